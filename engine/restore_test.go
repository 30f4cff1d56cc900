package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/testutil"
)

// reopenable is an engine a test closes and opens again on the same root,
// as a daemon restart does; the last one opened is torn down at the end.
type reopenable struct {
	t    *testing.T
	root string
	*engine.Engine
}

func newReopenable(t *testing.T, binary string) *reopenable {
	t.Helper()
	testutil.RequireRoot(t)
	r := &reopenable{t: t, root: testutil.StateRoot(t)}
	t.Cleanup(func() {
		if r.Engine == nil {
			// A reopen failed: one more, to take down what the test left
			// (its monitor, its containers).
			e, err := enginetest.TryOpenRoot(r.root, "")
			if err != nil {
				t.Errorf("cleanup: open %s again: %v", r.root, err)
				return
			}
			r.Engine = e
		}
		enginetest.Teardown(t, r.Engine)
	})
	r.Engine = enginetest.OpenRoot(t, r.root, binary)
	enginetest.Busybox(t, r.Engine, "busybox")
	return r
}

// reopen closes the engine (its containers keep running under the
// monitor) and opens another on the root, from binary.
func (r *reopenable) reopen(binary string) {
	r.t.Helper()
	if err := r.Engine.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.Engine = nil
	r.Engine = enginetest.OpenRoot(r.t, r.root, binary)
}

func monitorPidOf(t *testing.T, root string) int {
	t.Helper()
	resp, err := monitor.NewClient(root).Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return resp.MonitorPid
}

func gone(pid int) error {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return nil
	}
	return fmt.Errorf("pid %d still there", pid)
}

// counterUpTo waits until the counter container logged at least n lines,
// checking there is no gap, and returns how many it logged.
func counterUpTo(t *testing.T, m *container.Manager, c container.Container, n int) int {
	t.Helper()
	var got int
	testutil.Eventually(t, 20*time.Second, func() error {
		got = checkCounter(t, c.Name, logLines(t, m, c.ID, "stdout"))
		if got < n {
			return fmt.Errorf("%s: %d lines, want %d", c.Name, got, n)
		}
		return nil
	})
	return got
}

// TestReopenKeepsRunningContainersAndCatchesUp closes the engine (a
// daemon going away) while containers run and others end, and opens it
// again: the running ones run on with the same pid and no lost line, the
// ended one shows its real exit code, and the restart policy of one that
// ended meanwhile carries on.
func TestReopenKeepsRunningContainersAndCatchesUp(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	ctl := t.TempDir()
	mount := []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}}
	counter := start(t, r.Engine, container.Config{Name: "counter", Cmd: counterScript(5000)})
	ender := start(t, r.Engine, container.Config{Name: "ender", Mounts: mount,
		Cmd: []string{"sh", "-c", "while [ ! -f /ctl/end ]; do usleep 10000; done; exit 7"}})
	restarter := start(t, r.Engine, container.Config{Name: "restarter", Mounts: mount, RestartPolicy: container.RestartPolicy{Name: "always"},
		Cmd: []string{"sh", "-c", "while [ ! -f /ctl/again ]; do usleep 10000; done; rm /ctl/again; exit 1"}})
	before := counterUpTo(t, r.Containers, counter, 20)

	if err := r.Engine.Close(); err != nil {
		t.Fatal(err)
	}
	// No engine: two containers end.
	for _, f := range []string{"end", "again"} {
		if err := os.WriteFile(filepath.Join(ctl, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error { return errors.Join(gone(ender.State.Pid), gone(restarter.State.Pid)) })
	r.Engine = enginetest.OpenRoot(t, r.root, "")

	if c, _ := r.Containers.Get("counter"); c.State.Status != container.Running || c.State.Pid != counter.State.Pid {
		t.Fatalf("counter after reopen: %+v", c.State)
	}
	if c, _ := r.Containers.Get("ender"); c.State.Status != container.Exited || c.State.ExitCode != 7 || c.State.Error != "" {
		t.Fatalf("ender after reopen: %+v", c.State)
	}
	got := eventually(t, r.Engine, "restarter", runningAfter(1))
	if got.State.Pid == restarter.State.Pid {
		t.Fatal("restarter runs with its old pid")
	}
	counterUpTo(t, r.Containers, counter, before+20)
}

// TestExitStillDrainingIsNotLost: a container's process exited but a
// child of it still holds its output open, so the monitor has not yet
// recorded the exit (it waits for the output, up to 2 s). A daemon that
// catches up in that window (here a reopen) must wait for the exit to
// come, not call it lost (255).
func TestExitStillDrainingIsNotLost(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	// In the host's pid namespace, the child outlives the container's
	// first process (in a namespace of its own, it would die with it).
	c := start(t, r.Engine, container.Config{Name: "draining", NetworkMode: "none", PidMode: "host",
		Cmd: []string{"sh", "-c", "(sleep 1.5; echo late) & echo early; exit 3"}})
	testutil.Eventually(t, 10*time.Second, func() error { return gone(c.State.Pid) })
	r.reopen("")
	if code := waitExit(t, r.Engine, c.ID); code != 3 {
		t.Fatalf("exit %d, want 3: %q", code, logText(t, r.Containers, c.ID, logs.ReadOptions{Tail: -1}))
	}
	if got := strings.Join(logLines(t, r.Containers, c.ID, "stdout"), "|"); got != "early|late" {
		t.Fatalf("logged %q", got)
	}
}

// TestImageOfAContainerStaysAcrossARestart: a container's image cannot be
// removed while the container exists, also after a daemon restart (its
// lease is in memory, taken again from the records), and can once the
// container is removed.
func TestImageOfAContainerStaysAcrossARestart(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	ctx := context.Background()
	c, err := r.Containers.Create(ctx, container.Config{Name: "user", Image: "busybox", NetworkMode: "none", Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	r.reopen("")
	if _, err := r.Images.Remove(ctx, c.ImageID, image.RemoveOptions{Force: true}); !errdefs.IsConflict(err) {
		t.Fatalf("rm -f of the image of a container, after a restart: %v, want a conflict", err)
	}
	if err := r.Containers.Remove(ctx, c.ID, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Images.Remove(ctx, c.ImageID, image.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("rm of the image once its container is gone: %v", err)
	}
}

// TestKilledMonitorIsReplacedAndAdopts kills the monitor with SIGKILL: the
// engine starts another, which adopts the running container with the
// stdio the engine kept; the container was not hurt (no SIGPIPE), its log
// has every line, and only its exit status is lost, as documented.
func TestKilledMonitorIsReplacedAndAdopts(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c := start(t, e, container.Config{Name: "flood", Cmd: counterScript(200)})
	counterUpTo(t, e.Containers, c, 50)
	old := monitorPidOf(t, e.Root)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		list, err := monitor.NewClient(e.Root).List(context.Background())
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].Pid != c.State.Pid || !list[0].Adopted {
			return fmt.Errorf("the new monitor supervises %+v", list)
		}
		return nil
	})
	if pid := monitorPidOf(t, e.Root); pid == old {
		t.Fatal("the killed monitor still answers")
	}
	n := counterUpTo(t, e.Containers, c, 0)
	counterUpTo(t, e.Containers, c, n+200)
	if got, _ := e.Containers.Get(c.ID); got.State.Status != container.Running || got.State.Pid != c.State.Pid {
		t.Fatalf("after the monitor's death: %+v", got.State)
	}
	if err := e.Containers.Stop(context.Background(), c.ID, durationPtr(0)); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Containers.Get(c.ID)
	if got.State.ExitCode != 255 || !strings.Contains(got.State.Error, "lost") {
		t.Fatalf("exit of an adopted container: %+v", got.State)
	}
	checkCounter(t, c.Name, logLines(t, e.Containers, c.ID, "stdout"))
}

// copyBinary copies the test binary to a new file, as a newly built berth.
func copyBinary(t *testing.T, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), name)
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUpgradeTakesOverWithoutRestartingContainers opens the engine from a
// new binary while containers run: the monitor re-executes itself into it
// (same pid), every container keeps its pid, its log its lines, a
// terminal container its pty, and the upgraded monitor still records real
// exit codes.
func TestUpgradeTakesOverWithoutRestartingContainers(t *testing.T) {
	t.Parallel()
	oldBin, newBin := copyBinary(t, "berth-old"), copyBinary(t, "berth-new")
	r := newReopenable(t, oldBin)
	counter := start(t, r.Engine, container.Config{Name: "counter", Cmd: counterScript(2000)})
	shell := start(t, r.Engine, container.Config{Name: "shell", Cmd: []string{"sh"}, Tty: true, OpenStdin: true})
	before := counterUpTo(t, r.Containers, counter, 20)
	mon := monitorPidOf(t, r.root)
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", mon)); exe != oldBin {
		t.Fatalf("monitor runs %s, want %s", exe, oldBin)
	}

	r.reopen(newBin)
	if pid := monitorPidOf(t, r.root); pid != mon {
		t.Fatalf("monitor pid %d after the upgrade, was %d", pid, mon)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", mon)); exe != newBin {
		t.Fatalf("monitor runs %s after the upgrade, want %s", exe, newBin)
	}
	for _, c := range []container.Container{counter, shell} {
		if got, _ := r.Containers.Get(c.ID); got.State.Status != container.Running || got.State.Pid != c.State.Pid {
			t.Fatalf("%s after the upgrade: %+v", c.Name, got.State)
		}
	}
	counterUpTo(t, r.Containers, counter, before+20)

	in, input := io.Pipe()
	defer input.Close()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- r.Containers.Attach(context.Background(), shell.ID, container.AttachIO{Stdin: in, Stdout: &out})
	}()
	if _, err := io.WriteString(input, "echo still here; exit 4\n"); err != nil {
		t.Fatal(err)
	}
	waitAttach(t, done)
	if code := waitExit(t, r.Engine, shell.ID); code != 4 {
		t.Fatalf("shell's exit %d after the upgrade, want 4", code)
	}
	out.WaitFor(t, "still here\r\n")
}

// TestKilledMonitorLosesNoLineItHadRead kills the monitor between its read
// of a container's output and the log's write (a failpoint, armed for the
// first monitor only): as the read returns, before its length is stored
// (where a SIGKILL that comes during read(2) takes effect), and once it
// is. The next monitor writes what was read, from the staging file, when
// it adopts the container, and the log has every line. Killed after the
// write (where a SIGKILL during write(2) takes effect), the next monitor
// sees the log grew and does not write it twice. The container
// prints nothing until its start has answered: a monitor killed before its
// answer fails the start instead.
func TestKilledMonitorLosesNoLineItHadRead(t *testing.T) {
	for _, point := range []string{"monitor/after-read", "monitor/after-hold", "monitor/after-log"} {
		t.Run(strings.TrimPrefix(point, "monitor/"), func(t *testing.T) {
			t.Setenv(failpoint.Env, point+"=kill")
			e := busyboxEngine(t)
			old := monitorPidOf(t, e.Root)
			os.Unsetenv(failpoint.Env) // the monitors started from now on run as usual
			ctl := t.TempDir()
			counter := counterScript(1000)
			counter[2] = "while [ ! -e /ctl/go ]; do usleep 1000; done; " + counter[2]
			c := start(t, e, container.Config{Name: "first-read", Cmd: counter, Mounts: []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}}})
			if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 20*time.Second, func() error { return gone(old) })
			counterUpTo(t, e.Containers, c, 100)
		})
	}
}
