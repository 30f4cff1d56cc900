package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/testutil"
)

// eventually polls the container's record until check accepts it.
func eventually(t *testing.T, e *engine.Engine, id string, check func(container.Container) error) container.Container {
	t.Helper()
	var last container.Container
	testutil.Eventually(t, 30*time.Second, func() error {
		c, err := e.Containers.Get(id)
		if err != nil {
			return err
		}
		last = c
		return check(c)
	})
	return last
}

func exitedWith(restarts int) func(container.Container) error {
	return func(c container.Container) error {
		if c.State.Status != container.Exited || c.RestartCount != restarts {
			return fmt.Errorf("status %s after %d restarts, want exited after %d", c.State.Status, c.RestartCount, restarts)
		}
		return nil
	}
}

func runningAfter(restarts int) func(container.Container) error {
	return func(c container.Container) error {
		if c.State.Status != container.Running || c.RestartCount < restarts {
			return fmt.Errorf("status %s after %d restarts, want running after %d", c.State.Status, c.RestartCount, restarts)
		}
		return nil
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	policy := func(name string, n int) container.RestartPolicy {
		return container.RestartPolicy{Name: name, MaximumRetryCount: n}
	}
	failing := []string{"sh", "-c", "exit 1"}

	t.Run("no", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: failing, RestartPolicy: policy("no", 0)})
		// The decision is taken as the exit is handled: exited, not restarting.
		if code := waitExit(t, e, c.ID); code != 1 {
			t.Fatalf("exit %d", code)
		}
		eventually(t, e, c.ID, exitedWith(0))
	})
	t.Run("on-failure:2", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: failing, RestartPolicy: policy("on-failure", 2)})
		got := eventually(t, e, c.ID, exitedWith(2))
		if got.State.ExitCode != 1 {
			t.Fatalf("exit code %d", got.State.ExitCode)
		}
	})
	t.Run("on-failure leaves success alone", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: []string{"true"}, RestartPolicy: policy("on-failure", 0)})
		waitExit(t, e, c.ID)
		eventually(t, e, c.ID, exitedWith(0))
	})
	t.Run("always, until stopped", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: []string{"true"}, RestartPolicy: policy("always", 0)})
		eventually(t, e, c.ID, func(c container.Container) error {
			if c.RestartCount < 2 {
				return fmt.Errorf("%d restarts", c.RestartCount)
			}
			return nil
		})
		if err := e.Containers.Stop(ctx, c.ID, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := e.Containers.Get(c.ID)
		if got.State.Status != container.Exited || !got.State.StoppedByUser {
			t.Fatalf("after stop: %+v", got.State)
		}
	})
	t.Run("on-failure:1, its retry back after a user's start", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: failing, RestartPolicy: policy("on-failure", 1)})
		eventually(t, e, c.ID, exitedWith(1))
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events := e.Containers.Subscribe(sctx)
		if err := e.Containers.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		// Two runs end: the start's, and the retry that a start counting
		// from 0 again allows.
		timeout := time.After(10 * time.Second)
		for dies := 0; dies < 2; {
			select {
			case ev := <-events:
				if ev.ID == c.ID && ev.Action == "die" {
					dies++
				}
			case <-timeout:
				t.Fatalf("%d runs ended after the start, want 2", dies)
			}
		}
		eventually(t, e, c.ID, exitedWith(1))
	})
	t.Run("unless-stopped, after a kill from outside", func(t *testing.T) {
		c := start(t, e, container.Config{Cmd: sleeper, RestartPolicy: policy("unless-stopped", 0)})
		// The kernel (an OOM kill, an admin) ends it: not the user's stop.
		if err := unix.Kill(c.State.Pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		got := eventually(t, e, c.ID, runningAfter(1))
		if got.State.Pid == c.State.Pid {
			t.Fatal("restarted with the same pid")
		}
		if err := e.Containers.Stop(ctx, c.ID, durationPtr(0)); err != nil {
			t.Fatal(err)
		}
		got, _ = e.Containers.Get(c.ID)
		if got.State.Status != container.Exited || got.State.ExitCode != 137 {
			t.Fatalf("after stop: %+v", got.State)
		}
	})
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// TestRestartBacksOff checks docker's back-off: the delay before each
// restart of a container that keeps failing doubles from 100ms. The delays
// are lower bounds (timers never fire early), so the check cannot flake.
func TestRestartBacksOff(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.Containers.Subscribe(ctx)
	c := start(t, e, container.Config{Cmd: []string{"sh", "-c", "exit 3"}, RestartPolicy: container.RestartPolicy{Name: "on-failure"}})
	var dies, starts []time.Time
	timeout := time.After(30 * time.Second)
	for len(starts) < 4 {
		select {
		case ev := <-events:
			if ev.ID != c.ID {
				continue
			}
			switch ev.Action {
			case "die":
				dies = append(dies, ev.Time)
			case "start":
				starts = append(starts, ev.Time)
			}
		case <-timeout:
			t.Fatalf("%d restarts in 30s", len(starts))
		}
	}
	for i := range 3 {
		gap := starts[i+1].Sub(dies[i])
		if want := 100 * time.Millisecond << i; gap < want {
			t.Errorf("restart %d came %v after the exit, want at least %v", i+1, gap, want)
		}
	}
	if err := e.Containers.Stop(context.Background(), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Containers.Get(c.ID); got.State.Status != container.Exited {
		t.Fatalf("after stop: %s", got.State.Status)
	}
}

// TestForceRemoveCannotBeUndoneByAStart checks that between the stop and
// the delete of `rm -f` nothing (a watch correcting drift, a user's start)
// brings the container back, which made the remove fail.
func TestForceRemoveCannotBeUndoneByAStart(t *testing.T) {
	e := busyboxEngine(t)
	ctx := context.Background()
	c := start(t, e, container.Config{Cmd: sleeper, RestartPolicy: container.RestartPolicy{Name: "always"}})
	t.Setenv(failpoint.Env, "container/remove-after-stop=sleep(2s)")
	removed := make(chan error, 1)
	go func() { removed <- e.Containers.Remove(ctx, c.ID, container.RemoveOptions{Force: true}) }()
	eventually(t, e, c.ID, exitedWith(0))
	err := e.Containers.Start(ctx, c.ID)
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "marked for removal") {
		t.Errorf("start during rm -f: %v, want a conflict", err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("rm -f: %v", err)
	}
	if _, err := e.Containers.Get(c.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("after rm -f: %v", err)
	}
}

// TestStoppedContainersAtDaemonStart: as docker's daemon does when it
// starts, the restart policy always starts again a container that the
// user stopped (what tells always from unless-stopped); unless-stopped,
// on-failure and no leave theirs stopped, and a container that never ran
// stays created.
func TestStoppedContainersAtDaemonStart(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	ctx := context.Background()
	stopped := map[string]container.Container{}
	for _, p := range []string{"always", "unless-stopped", "on-failure", "no"} {
		c := start(t, r.Engine, container.Config{Name: p, Cmd: sleeper, RestartPolicy: container.RestartPolicy{Name: p}})
		if err := r.Containers.Stop(ctx, c.ID, durationPtr(0)); err != nil {
			t.Fatal(err)
		}
		stopped[p] = c
	}
	created, err := r.Containers.Create(ctx, container.Config{Name: "created", Image: "busybox", NetworkMode: "none", Cmd: sleeper,
		RestartPolicy: container.RestartPolicy{Name: "always"}})
	if err != nil {
		t.Fatal(err)
	}
	r.reopen("")
	got := eventually(t, r.Engine, stopped["always"].ID, runningAfter(0))
	if got.State.Pid == stopped["always"].State.Pid || got.State.StoppedByUser {
		t.Fatalf("always after the daemon's start: %+v", got.State)
	}
	for _, p := range []string{"unless-stopped", "on-failure", "no"} {
		if c, _ := r.Containers.Get(stopped[p].ID); c.State.Status != container.Exited {
			t.Errorf("%s after the daemon's start: %s, want exited", p, c.State.Status)
		}
	}
	if c, _ := r.Containers.Get(created.ID); c.State.Status != container.Created {
		t.Errorf("the container that never ran, after the daemon's start: %s, want created", c.State.Status)
	}
}
