package testutil

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// UnifiedMount finds a cgroup2 mount: /sys/fs/cgroup on a v2 host, the
// unified hierarchy of a hybrid one (which takes every core operation,
// with no controller). It skips the test if there is none, and fails it
// under CI=true.
func UnifiedMount(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	if InCI() {
		t.Fatal("no cgroup2 mount under CI=true")
	}
	t.Skip("no cgroup2 mount (this would fail under CI=true)")
	return ""
}

// UnifiedCgroupOf is pid's cgroup on the unified hierarchy (its "0::"
// line in /proc/PID/cgroup).
func UnifiedCgroupOf(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path
		}
	}
	t.Fatalf("no unified hierarchy in /proc/%d/cgroup: %q", pid, b)
	return ""
}
