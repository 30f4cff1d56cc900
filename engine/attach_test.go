package engine_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
)

// attachThenStart attaches to a created container, starts it once the
// attach is in place (as `run` does) and returns the attach's result.
func attachThenStart(t *testing.T, m *container.Manager, id string, aio container.AttachIO) <-chan error {
	t.Helper()
	attached := make(chan struct{})
	aio.Attached = func() { close(attached) }
	done := make(chan error, 1)
	go func() { done <- m.Attach(context.Background(), id, aio) }()
	select {
	case <-attached:
	case err := <-done:
		t.Fatalf("attach: %v", err)
	}
	if err := m.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return done
}

func waitAttach(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("attach did not end with the container's output")
	}
}

// TestAttachBeforeStartMissesNothing guards run's order (attach, then
// start): the first line a container prints reaches the attach, on its
// own stream.
func TestAttachBeforeStartMissesNothing(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c, err := e.Containers.Create(context.Background(), container.Config{
		Image: "busybox", NetworkMode: "none", Cmd: []string{"sh", "-c", "echo first; echo second >&2; exit 2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	waitAttach(t, attachThenStart(t, e.Containers, c.ID, container.AttachIO{Stdout: &out, Stderr: &errb}))
	if out.String() != "first\n" || errb.String() != "second\n" {
		t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
	}
	if code := waitExit(t, e, c.ID); code != 2 {
		t.Fatalf("exit %d", code)
	}
}

// TestStdinOnceClosesInputWhenTheClientsEnds is `echo ... | run -i cat`:
// the container reads the client's input, then EOF, and exits.
func TestStdinOnceClosesInputWhenTheClientsEnds(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c, err := e.Containers.Create(context.Background(), container.Config{
		Image: "busybox", NetworkMode: "none", Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	waitAttach(t, attachThenStart(t, e.Containers, c.ID, container.AttachIO{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out}))
	if out.String() != "hello\nworld\n" {
		t.Fatalf("stdout %q", out.String())
	}
	if code := waitExit(t, e, c.ID); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := logText(t, e.Containers, c.ID, logsAll); got != "stdout:hello\nstdout:world\n" {
		t.Fatalf("log %q", got)
	}
}

// TestTerminalContainerTakesInputAndResize runs a shell with a tty under
// the monitor: input reaches it, resizing reaches its pty, its output
// (with the tty's \r\n) is attached and logged, its exit code kept.
func TestTerminalContainerTakesInputAndResize(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c, err := e.Containers.Create(context.Background(), container.Config{
		Image: "busybox", NetworkMode: "none", Cmd: []string{"sh"}, Tty: true, OpenStdin: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, input := io.Pipe()
	defer input.Close()
	var out syncBuffer
	done := attachThenStart(t, e.Containers, c.ID, container.AttachIO{Stdin: in, Stdout: &out})
	if err := e.Containers.Resize(c.ID, 40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(input, "stty size; tty; echo $TERM; exit 3\n"); err != nil {
		t.Fatal(err)
	}
	waitAttach(t, done)
	if code := waitExit(t, e, c.ID); code != 3 {
		t.Fatalf("exit %d", code)
	}
	got := out.String()
	for _, want := range []string{"40 120\r\n", "/dev/pts/0\r\n", "xterm\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("attached output lacks %q: %q", want, got)
		}
	}
	if log := logText(t, e.Containers, c.ID, logsAll); !strings.Contains(log, "stdout:40 120\r\n") {
		t.Errorf("log lacks the tty's lines: %q", log)
	}
	if err := e.Containers.Resize(c.ID, 10, 10); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("resize of a stopped container: %v", err)
	}
}
