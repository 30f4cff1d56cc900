package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// newRuntime returns a Runtime over a fresh state root (StateRoot's leak
// check runs at the end), laid out as the engine lays it out: state in
// ROOT/runtime, cgroups under the root's parent cgroup.
func newRuntime(t *testing.T) (*Runtime, string) {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	rt, err := New(Config{StateDir: filepath.Join(root, "runtime"), CgroupParent: rootid.CgroupParent(root)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, root
}

// bundle makes a busybox bundle under root with the default spec, changed by edit.
func bundle(t *testing.T, root string, args []string, edit func(*specs.Spec)) string {
	t.Helper()
	dir, err := os.MkdirTemp(root, "bundle-")
	if err != nil {
		t.Fatal(err)
	}
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	spec, err := DefaultSpec(SpecOptions{Args: args, Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(spec)
	}
	if err := WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// result is what a container printed and how it ended.
type result struct {
	stdout, stderr string
	status         unix.WaitStatus
}

func (r result) code() int { return r.status.ExitStatus() }

// capture is a pipe whose reading end is drained into a buffer.
type capture struct {
	w    *os.File
	buf  bytes.Buffer
	done chan struct{}
}

func newCapture(t *testing.T) *capture {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{w: pw, done: make(chan struct{})}
	go func() {
		io.Copy(&c.buf, pr)
		pr.Close()
		close(c.done)
	}()
	return c
}

// text closes the writing end (the caller's copy) and waits for EOF.
func (c *capture) text() string {
	c.w.Close()
	<-c.done
	return c.buf.String()
}

// run creates, starts and waits for a container, then deletes it.
func run(t *testing.T, rt *Runtime, id, bundle string) result {
	t.Helper()
	out, errOut := newCapture(t), newCapture(t)
	return runCreated(t, rt, id, out, errOut, func() (Process, error) {
		return rt.Create(context.Background(), id, bundle, IO{Stdout: out.w, Stderr: errOut.w})
	})
}

// runCreated is run with the create its caller makes, writing to out and
// errOut.
func runCreated(t *testing.T, rt *Runtime, id string, out, errOut *capture, create func() (Process, error)) result {
	t.Helper()
	p, err := create()
	if err != nil {
		out.text()
		errOut.text()
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), id, DeleteOptions{Force: true}) })
	if err := rt.Start(context.Background(), id); err != nil {
		t.Fatalf("start: %v", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(p.Pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait: %v", err)
	}
	res := result{stdout: out.text(), stderr: errOut.text(), status: ws}
	if err := rt.Delete(context.Background(), id, DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return res
}

// sh runs a shell script in a default busybox container and returns its result.
func sh(t *testing.T, script string, edit func(*specs.Spec)) result {
	t.Helper()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", script}, edit)
	return run(t, rt, strings.ReplaceAll(t.Name(), "/", "-"), b)
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer = testutil.SyncBuffer

// newRuntimeLog is newRuntime with the runtime's warnings captured.
func newRuntimeLog(t *testing.T) (*Runtime, string, *syncBuffer) {
	t.Helper()
	rt, root := newRuntime(t)
	buf := &syncBuffer{}
	rt.log = slog.New(slog.NewTextHandler(buf, nil))
	return rt, root, buf
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// addProbe copies testdata/runtime/probe, built once, into the bundle's /bin.
func addProbe(t *testing.T, bundle string) {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-probe-")
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probePath, "./testdata/runtime/probe")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatalf("build probe: %v", probeErr)
	}
	data, err := os.ReadFile(probePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs", "bin", "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// started is a container created and started by start.
type started struct {
	Process
	out, errOut *capture
	reaped      bool
}

// start creates and starts a container, and returns once its process
// has exec'd (or ended); the test waits for it (wait) or kills it;
// cleanup deletes it by force.
func start(t *testing.T, rt *Runtime, id, bundle string) *started {
	t.Helper()
	s := create(t, rt, id, bundle, nil)
	stage, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.Pid))
	if err := rt.Start(context.Background(), id); err != nil {
		t.Fatalf("start: %v", err)
	}
	// Start returns once the setup stage is told to go (the monitor waits
	// for the exec itself): a test that looks into the container, at its
	// pid 1 say, waits too.
	for deadline := time.Now().Add(10 * time.Second); stage != "" && time.Now().Before(deadline); {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.Pid)); err != nil || exe != stage {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return s
}

// create creates a container with pipes for stdout and stderr (and stdin if given).
func create(t *testing.T, rt *Runtime, id, bundle string, stdin *os.File) *started {
	t.Helper()
	s := &started{out: newCapture(t), errOut: newCapture(t)}
	p, err := rt.Create(context.Background(), id, bundle, IO{Stdin: stdin, Stdout: s.out.w, Stderr: s.errOut.w})
	if err != nil {
		s.out.text()
		s.errOut.text()
		t.Fatalf("create: %v", err)
	}
	s.Process = p
	t.Cleanup(func() {
		rt.Delete(context.Background(), id, DeleteOptions{Force: true})
		if !s.reaped {
			reap(p.Pid)
		}
	})
	return s
}

// wait reaps the container's process and returns what it printed.
func (s *started) wait(t *testing.T) result {
	t.Helper()
	ws := reap(s.Pid)
	s.reaped = true
	return result{stdout: s.out.text(), stderr: s.errOut.text(), status: ws}
}

// reap waits for one child; a second call for the same pid returns at once.
func reap(pid int) unix.WaitStatus {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return ws
		}
	}
}

// execOut runs args in a running container and returns its output and status.
func execOut(t *testing.T, rt *Runtime, id string, p *specs.Process) result {
	t.Helper()
	out, errOut := newCapture(t), newCapture(t)
	proc, err := rt.Exec(context.Background(), id, p, IO{Stdout: out.w, Stderr: errOut.w})
	if err != nil {
		out.text()
		errOut.text()
		t.Fatalf("exec %v: %v", p.Args, err)
	}
	ws := reap(proc.Pid)
	return result{stdout: out.text(), stderr: errOut.text(), status: ws}
}

func proc(args ...string) *specs.Process {
	return &specs.Process{Args: args, Env: []string{"PATH=/bin"}}
}
