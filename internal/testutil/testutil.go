// Package testutil holds what berth's tests share: the rule for tests that
// need root or a host tool (skip on a laptop, fail under CI=true), a state
// root per test with a leak check at its end, polling with a deadline, and
// busybox-static root filesystems to build images and bundles from.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// prerequisite is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing ends the test for want of a prerequisite: a failure under CI, a skip elsewhere.
func missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("missing prerequisite under CI=true: %s (make deps installs the packages)", what)
	}
	t.Skipf("missing prerequisite (this would fail under CI=true): %s", what)
}

// RequireRoot ends the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "root")
	}
}

// RequireCommand ends the test unless every named program is on PATH, and
// returns their paths in order.
func RequireCommand(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(names))
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing(t, "program "+n)
		}
		paths = append(paths, p)
	}
	return paths
}

// Eventually polls check until it returns nil or timeout passes, then fails
// the test with check's last error.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(delay)
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// StateRoot makes a fresh berth state root for the test and registers a leak
// check that runs after the test's own cleanups (so after the engine made on
// it is closed): no mount, link, nftables table, cgroup or process of it may
// remain.
func StateRoot(t testing.TB) string {
	t.Helper()
	// Short: socket paths under the root must stay below 108 bytes.
	dir, err := os.MkdirTemp("", "berth-")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("BERTH_KEEP_ROOT") != "" {
			t.Logf("keeping state root %s", root)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove state root: %v", err)
		}
	})
	t.Cleanup(func() { CheckLeaks(t, root) })
	return root
}

// CheckLeaks fails the test if anything made for the state root is still on
// the host. Tests that make their own roots call it at their end.
func CheckLeaks(t testing.TB, root string) {
	t.Helper()
	for _, leak := range Leaks(root) {
		t.Errorf("leak: %s", leak)
	}
}

// Leaks lists what the state root left on the host, one line per object.
func Leaks(root string) []string {
	var out []string
	out = append(out, leakedMounts(root)...)
	out = append(out, leakedLinks(root)...)
	out = append(out, leakedNFTables(root)...)
	out = append(out, leakedCgroups(root)...)
	out = append(out, leakedProcesses(root)...)
	return out
}

func errf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
