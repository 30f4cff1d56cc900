package runtime

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

func TestExecRunsInTheContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	s := start(t, rt, "exec", b)
	p := proc("sh", "-c", `echo "$$ $FOO $(pwd) $(id -u):$(id -g) $(hostname)"; tr '\0' ' ' < /proc/1/cmdline; echo; cat /proc/self/status | grep -E '^(NoNewPrivs|Seccomp):'`)
	p.Env = append(p.Env, "FOO=bar")
	p.Cwd = "/tmp"
	p.User = specs.User{UID: 1000, GID: 1000}
	res := execOut(t, rt, "exec", p)
	lines := strings.Split(res.stdout, "\n")
	if len(lines) < 4 {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	f := strings.Fields(lines[0])
	if len(f) != 5 || f[0] == "1" || f[1] != "bar" || f[2] != "/tmp" || f[3] != "1000:1000" || f[4] != "box" {
		t.Fatalf("got %q, want a non-1 pid, bar, /tmp, 1000:1000, box", lines[0])
	}
	if lines[1] != "sleep 30 " {
		t.Errorf("pid 1 is %q: not the container's pid namespace", lines[1])
	}
	if !strings.Contains(res.stdout, "NoNewPrivs:\t1") || !strings.Contains(res.stdout, "Seccomp:\t2") {
		t.Errorf("exec'd process lacks the container's no_new_privs or seccomp:\n%s", res.stdout)
	}
	// An exec'd process is in the container's cgroup (and so counted and
	// killed with it).
	sleeper, err := rt.Exec(context.Background(), "exec", proc("sleep", "30"), IO{})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := rt.Pids(context.Background(), "exec")
	if err != nil || len(pids) != 2 || (pids[0] != sleeper.Pid && pids[1] != sleeper.Pid) {
		t.Fatalf("pids %v (%v), want the container's and %d", pids, err, sleeper.Pid)
	}
	if err := rt.Kill(context.Background(), "exec", unix.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	reap(sleeper.Pid)
	s.wait(t)
}

// TestExecLeavesTheCallersNamespacesAlone guards the threads that enter a
// container's namespaces: none may be the main thread, whose namespaces are
// the process's (/proc/self), and none may be reused.
func TestExecLeavesTheCallersNamespacesAlone(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	start(t, rt, "exec-ns", b)
	before := map[string]string{}
	for _, ns := range []string{"mnt", "net", "pid", "uts", "ipc"} {
		before[ns], _ = os.Readlink("/proc/self/ns/" + ns)
	}
	for range 20 {
		execOut(t, rt, "exec-ns", proc("true"))
	}
	for ns, want := range before {
		if got, _ := os.Readlink("/proc/self/ns/" + ns); got != want {
			t.Errorf("the test process's %s namespace became %s (was %s)", ns, got, want)
		}
	}
	if _, err := cgroups.Detect(); err != nil {
		t.Errorf("the process's mount table changed: %v", err)
	}
}

func TestExecStatusAndErrors(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	start(t, rt, "exec-err", b)
	if res := execOut(t, rt, "exec-err", proc("sh", "-c", "exit 4")); res.code() != 4 {
		t.Fatalf("status %d, want 4", res.code())
	}
	_, err := rt.Exec(context.Background(), "exec-err", proc("no-such-program"), IO{})
	var se *SetupError
	if !errors.As(err, &se) || se.Step != "exec" || !strings.Contains(se.Err, "not found") {
		t.Fatalf("got %v, want a setup error at exec saying not found", err)
	}
	if _, err := rt.Exec(context.Background(), "no-such-container", proc("true"), IO{}); !errdefs.IsNotFound(err) {
		t.Fatalf("exec in a missing container: %v", err)
	}
}

func TestExecInACreatedContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	create(t, rt, "exec-created", b, nil)
	res := execOut(t, rt, "exec-created", proc("hostname"))
	if res.stdout != "box\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestExecWithATerminal(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	start(t, rt, "exec-tty", b)
	p := proc("sh", "-c", "tty; stty size")
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	pr, err := rt.Exec(context.Background(), "exec-tty", p, IO{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Console == nil {
		t.Fatal("no console returned")
	}
	out := readConsole(t, pr.Console)
	reap(pr.Pid)
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "33 111") {
		t.Fatalf("got %q", out)
	}
}

// readConsole reads a pty master until the slave side is gone (EIO).
func readConsole(t *testing.T, master *os.File) string {
	t.Helper()
	defer master.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestTerminalContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "tty; echo $TERM"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Env = append(s.Process.Env, "TERM=xterm")
	})
	p, err := rt.Create(context.Background(), "tty", b, IO{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), "tty", DeleteOptions{Force: true}) })
	if p.Console == nil {
		reap(p.Pid)
		t.Fatal("no console")
	}
	if err := rt.Start(context.Background(), "tty"); err != nil {
		t.Fatal(err)
	}
	out := readConsole(t, p.Console)
	reap(p.Pid)
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "xterm") {
		t.Fatalf("got %q", out)
	}
}

// TestConsoleSocket passes the pty master to a unix socket, as runc's
// --console-socket does.
func TestConsoleSocket(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	sock := filepath.Join(root, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		buf := make([]byte, 64)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			got <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "pty")
	}()
	b := bundle(t, root, []string{"echo", "via socket"}, func(s *specs.Spec) { s.Process.Terminal = true })
	p, err := rt.Create(context.Background(), "sock", b, IO{ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), "sock", DeleteOptions{Force: true}) })
	master := <-got
	if master == nil || p.Console != nil {
		reap(p.Pid)
		t.Fatalf("console: socket got %v, Create returned %v", master, p.Console)
	}
	if err := rt.Start(context.Background(), "sock"); err != nil {
		t.Fatal(err)
	}
	out := readConsole(t, master)
	reap(p.Pid)
	if !strings.Contains(out, "via socket") {
		t.Fatalf("got %q", out)
	}
}

func TestStdinIsTheCallersPipe(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "read line; echo got $line"}, nil)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, rt, "stdin", b, pr)
	pr.Close()
	if err := rt.Start(context.Background(), "stdin"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(pw, "hello\n")
	pw.Close()
	if res := s.wait(t); res.stdout != "got hello\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

// TestOnlyStdioAndExtraFilesReachTheProcess guards against descriptor leaks
// from the caller or the setup stage (handshake socket, exec fifo, the
// binary's handle, Go's poller): the container's process has 0, 1, 2 and
// the extra files it was given, nothing else.
func TestOnlyStdioAndExtraFilesReachTheProcess(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	extra, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// ls itself is the container's process: its own directory handle is
	// the one descriptor past the extra file.
	b := bundle(t, root, []string{"ls", "/proc/self/fd"}, nil)
	out, errOut := newCapture(t), newCapture(t)
	p, err := rt.Create(context.Background(), "fds", b, IO{Stdout: out.w, Stderr: errOut.w, ExtraFiles: []*os.File{extra}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), "fds", DeleteOptions{Force: true}) })
	if err := rt.Start(context.Background(), "fds"); err != nil {
		t.Fatal(err)
	}
	reap(p.Pid)
	if got := strings.Fields(out.text()); strings.Join(got, " ") != "0 1 2 3 4" {
		t.Fatalf("descriptors %q, want 0 1 2, the extra file 3 and ls's own 4 (stderr %q)", got, errOut.text())
	}
}
