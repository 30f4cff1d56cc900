package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestV2CgroupLifecycle drives a v2 host's cgroups as a container's go:
// made with their parent, a process cloned straight into one, frozen and
// thawed, moved to another (a spare setup stage claimed by a container),
// killed and removed. On a hybrid host it runs on the unified hierarchy,
// which has no controllers there; the core files are all it needs.
func TestV2CgroupLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	h := &Host{Version: V2, Unified: testutil.UnifiedMount(t)}
	parent := fmt.Sprintf("/berth-v2test-%d", os.Getpid())
	t.Cleanup(func() {
		h.RemoveChildrenIf(parent, func(string) bool { return true })
		h.RemoveIfEmpty(parent)
	})
	from, err := h.Cgroup(parent + "/spare-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := from.Create(); err != nil {
		t.Fatal(err)
	}
	fd, ok, err := from.CloneFD()
	if err != nil || !ok {
		t.Fatalf("CloneFD: %v %v", ok, err)
	}
	cmd := exec.Command(testutil.Busybox(t), "sleep", "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = cmd.Start()
	syscall.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	pid := cmd.Process.Pid
	if procs, err := from.Procs(); err != nil || !slices.Equal(procs, []int{pid}) {
		t.Fatalf("procs of the cgroup cloned into: %v %v, want [%d]", procs, err, pid)
	}

	if err := from.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := from.Frozen(); err != nil || !frozen {
		t.Fatalf("after Freeze: frozen %v %v", frozen, err)
	}
	if err := from.Thaw(); err != nil {
		t.Fatal(err)
	}

	if err := h.Move(parent+"/spare-1", parent+"/web-1", pid); err != nil {
		t.Fatal(err)
	}
	if got := testutil.UnifiedCgroupOf(t, pid); got != parent+"/web-1" {
		t.Fatalf("after the move, the process is in %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.Unified, parent, "spare-1")); !os.IsNotExist(err) {
		t.Fatalf("the cgroup moved from is still there: %v", err)
	}

	to, err := h.Cgroup(parent + "/web-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Kill(); err != nil {
		t.Fatal(err)
	}
	err = <-waited
	reaped = true
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the process after Kill: %v", err)
	}
	if err := to.Destroy(); err != nil {
		t.Fatal(err)
	}
	h.RemoveIfEmpty(parent)
	if _, err := os.Stat(filepath.Join(h.Unified, parent)); !os.IsNotExist(err) {
		t.Fatalf("the parent is still there: %v", err)
	}
}
