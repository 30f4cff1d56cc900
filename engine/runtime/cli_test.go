package runtime

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// berth runs the berth binary with --root root.
func berth(t *testing.T, root string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testutil.BerthBinary(t), append([]string{"--root", root}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestCLIRunLikeRunc drives `berth runtime` as one drives runc: spec, run,
// create/state/start/kill/delete, on a bundle directory.
func TestCLIRunLikeRunc(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	root := testutil.StateRoot(t)
	b := filepath.Join(root, "bundle")
	testutil.BusyboxRootfs(t, filepath.Join(b, "rootfs"))
	if _, stderr, code := berth(t, root, "runtime", "spec", "-b", b, "--", "sh", "-c", "echo hi; exit 3"); code != 0 {
		t.Fatalf("spec: %d %s", code, stderr)
	}
	out, stderr, code := berth(t, root, "runtime", "run", "-b", b, "cli-run")
	if out != "hi\n" || code != 3 {
		t.Fatalf("run: stdout %q, status %d, stderr %q", out, code, stderr)
	}
	// create, state, start, kill, delete
	os.Remove(filepath.Join(b, "config.json"))
	berth(t, root, "runtime", "spec", "-b", b, "--", "sleep", "30")
	// The container inherits create's stdio, as with runc: not a pipe the
	// test would wait on.
	create := exec.Command(testutil.BerthBinary(t), "--root", root, "runtime", "create", "-b", b, "cli-c")
	if err := create.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	state := func() string {
		out, stderr, code := berth(t, root, "runtime", "state", "cli-c")
		if code != 0 {
			t.Fatalf("state: %d %s", code, stderr)
		}
		var st struct{ Status string }
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("state output %q: %v", out, err)
		}
		return st.Status
	}
	if s := state(); s != "created" {
		t.Fatalf("after create: %s", s)
	}
	berth(t, root, "runtime", "start", "cli-c")
	if s := state(); s != "running" {
		t.Fatalf("after start: %s", s)
	}
	if out, _, _ := berth(t, root, "runtime", "list"); !strings.Contains(out, "cli-c") {
		t.Fatalf("list: %q", out)
	}
	if _, stderr, code := berth(t, root, "runtime", "delete", "cli-c"); code == 0 || !strings.Contains(stderr, "running") {
		t.Fatalf("delete of a running container: %d %q", code, stderr)
	}
	berth(t, root, "runtime", "kill", "cli-c", "KILL")
	testutil.Eventually(t, 5e9, func() error {
		if s := state(); s != "stopped" {
			return &stateError{s}
		}
		return nil
	})
	if _, stderr, code := berth(t, root, "runtime", "delete", "cli-c"); code != 0 {
		t.Fatalf("delete: %d %s", code, stderr)
	}
	if _, stderr, code := berth(t, root, "runtime", "state", "cli-c"); code == 0 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("state after delete: %d %q", code, stderr)
	}
}

type stateError struct{ s string }

func (e *stateError) Error() string { return "status " + e.s }
