package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestFailedSetupLeavesNothing kills or fails the setup stage at points of
// its work; Create reports it and nothing of the container remains
// (StateRoot's leak check: no mount, cgroup or process).
func TestFailedSetupLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ failpoint, want string }{
		{"runtime/after-pivot=panic", "exited with status 2"},
		{"runtime/after-pivot=kill", "exited with status 137"},
		{"runtime/before-pivot=error", "failpoint runtime/before-pivot"},
		{"runtime/after-pivot=exit(3)", "exited with status 3"},
	} {
		t.Run(strings.NewReplacer("/", "-", "=", "-", "(", "", ")", "").Replace(c.failpoint), func(t *testing.T) {
			t.Parallel()
			rt, root := newRuntime(t)
			rt.failpoints = c.failpoint
			b := bundle(t, root, []string{"true"}, nil)
			_, err := rt.Create(context.Background(), "half", b, IO{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("create with %s: %v, want an error saying %q", c.failpoint, err, c.want)
			}
			if _, err := rt.State(context.Background(), "half"); !errdefs.IsNotFound(err) {
				t.Fatalf("state after a failed create: %v", err)
			}
		})
	}
}

// helper starts the test binary as a creator of one container with the
// given failpoints armed (in it and in the setup stage it starts).
func helper(t *testing.T, rt *Runtime, id, bundle, failpoints string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", rt.cfg.StateDir, rt.cfg.CgroupParent, id, bundle)
	cmd.Env = append(os.Environ(), helperEnv+"=create", failpoint.Env+"="+failpoints)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestDeleteAfterTheCreatorWasKilledMidSetup: the process running Create
// dies (SIGKILL) while the setup stage is half-way (mounts made, before
// pivot_root); Delete still removes everything.
func TestDeleteAfterTheCreatorWasKilledMidSetup(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"true"}, nil)
	cmd := helper(t, rt, "orphan", b, "runtime/before-pivot=sleep(60s)")
	ctx := context.Background()
	testutil.Eventually(t, 10*time.Second, func() error {
		pids, err := rt.Pids(ctx, "orphan")
		if err == nil && len(pids) == 0 {
			err = errors.New("no setup stage in the cgroup yet")
		}
		return err
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	st, err := rt.State(ctx, "orphan")
	if err != nil || st.Status != Stopped {
		t.Fatalf("state after the creator died: %+v %v, want stopped", st, err)
	}
	if err := rt.Delete(ctx, "orphan", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.State(ctx, "orphan"); !errdefs.IsNotFound(err) {
		t.Fatalf("state after delete: %v", err)
	}
}

// TestDeleteAfterTheCreatorKilledItselfAfterClone: the creator dies right
// after the clone, before the bootstrap: the setup stage, which has done
// nothing, exits on its own; Delete removes the cgroup and state.
func TestDeleteAfterTheCreatorKilledItselfAfterClone(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"true"}, nil)
	cmd := helper(t, rt, "early", b, "runtime/after-clone=kill")
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the creator ended with %v, want SIGKILL from its failpoint", err)
	}
	ctx := context.Background()
	testutil.Eventually(t, 10*time.Second, func() error {
		pids, err := rt.Pids(ctx, "early")
		if err == nil && len(pids) > 0 {
			err = fmt.Errorf("setup stage %v still runs", pids)
		}
		return err
	})
	if err := rt.Delete(ctx, "early", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteAfterSIGKILLOfTheContainer: the container's process is killed
// from outside; Delete is then a plain cleanup.
func TestDeleteAfterSIGKILLOfTheContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "sleep 30 & sleep 30 & wait"}, nil)
	s := start(t, rt, "killed", b)
	if err := syscall.Kill(s.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	if err := rt.Delete(context.Background(), "killed", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
