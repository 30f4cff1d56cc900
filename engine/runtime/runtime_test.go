package runtime

import "testing"

func TestEchoHi(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo hi", nil)
	if res.stdout != "hi\n" || res.code() != 0 {
		t.Fatalf("got stdout %q stderr %q status %d", res.stdout, res.stderr, res.code())
	}
}
