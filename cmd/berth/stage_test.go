package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestSetupStageStartsBeforeBerthsOtherPackages: berth re-executed as a
// container's setup stage runs it from engine/runtime's init, before the
// packages only the rest of berth needs are initialized (jsonschema's
// metaschemas for compose-go: 1.7 MB of allocations). An import that
// makes engine/runtime heavier, or sorts the order otherwise, shows here.
func TestSetupStageStartsBeforeBerthsOtherPackages(t *testing.T) {
	bin := testutil.BerthBinary(t)
	trace := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	const heavy = "init github.com/santhosh-tekuri/jsonschema/v6 "
	if out := trace("--version"); !strings.Contains(out, heavy) {
		t.Fatalf("berth --version does not initialize jsonschema; the test's premise no longer holds:\n%s", out)
	}
	out := trace(runtime.InitEntry)
	if strings.Contains(out, heavy) {
		t.Fatalf("the setup stage initialized jsonschema:\n%s", out)
	}
	// Started by hand, it finds no handshake and says so: it ran.
	if !strings.Contains(out, "not started by berth's runtime") {
		t.Fatalf("the setup stage did not run:\n%s", out)
	}
}
