package rootid

import "testing"

func TestOfIsStableAndDistinct(t *testing.T) {
	a, b := Of("/var/lib/berth"), Of("/var/lib/berth/")
	if a != b {
		t.Fatalf("same root, two identities: %q %q", a, b)
	}
	if len(a) != Len {
		t.Fatalf("identity %q has %d digits, want %d", a, len(a), Len)
	}
	if Of("/tmp/x") == a {
		t.Fatalf("two roots share identity %q", a)
	}
	if n := len(LinkPrefix("/r")); n != 7 {
		t.Fatalf("link prefix has %d chars, want 7", n)
	}
}
