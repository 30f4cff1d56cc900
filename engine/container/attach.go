package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container/monitor"
)

// AttachIO are the streams an attach connects to the container's: its
// input (only a container created with OpenStdin or Tty takes any) and its
// output. A nil writer drops that stream. With a tty, all output is Stdout.
type AttachIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Attached, when set, is called once the attach is in place: from
	// then on a start cannot outrun it.
	Attached func()
}

// Attach connects aio to the container's streams until its output ends
// (the process exited), ctx ends or a writer fails. A container that does
// not run yet is attached at its next start, before its process runs, so
// nothing it prints is missed (as `run` and `start -a` need).
func (m *Manager) Attach(ctx context.Context, ref string, aio AttachIO) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	a, c, err := m.attachRun(ctx, e, aio.Attached)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { a.Close() })
	defer stop()
	if aio.Stdin != nil && (c.Config.OpenStdin || c.Config.Tty) {
		go m.copyStdin(e, c, aio.Stdin)
	}
	for {
		kind, data, err := a.Next()
		switch {
		case errors.Is(err, io.EOF):
			a.Close()
			return nil
		case errors.Is(err, monitor.ErrDetached):
			a.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The monitor went (killed, or upgrading): attach to its
			// successor while this run goes on.
			if a, err = m.reattach(ctx, e, c.State.Pid); err != nil {
				return err
			}
			if a == nil {
				return nil // the run ended meanwhile
			}
			stop()
			stop = context.AfterFunc(ctx, func() { a.Close() })
			continue
		case err != nil:
			a.Close()
			return err
		}
		w := aio.Stdout
		if kind == monitor.FrameStderr {
			w = aio.Stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(data); err != nil {
			a.Close()
			return err
		}
	}
}

// attachRun attaches to e's current run, or waits for its next start.
func (m *Manager) attachRun(ctx context.Context, e *entry, attached func()) (*monitor.Attachment, Container, error) {
	if attached == nil {
		attached = func() {}
	}
	e.op.Lock()
	c := *e.c
	switch c.State.Status {
	case Running, Paused:
		e.op.Unlock()
		a, err := m.monitor.Attach(ctx, c.ID)
		if err != nil {
			return nil, c, fmt.Errorf("attach to %s: %w", c.Name, err)
		}
		attached()
		return a, c, nil
	case Removing, Dead:
		e.op.Unlock()
		return nil, c, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is being removed", c.Name))
	}
	ch := make(chan *monitor.Attachment, 1)
	e.pending = append(e.pending, ch)
	e.op.Unlock()
	attached()
	select {
	case a := <-ch:
		if a == nil {
			return nil, c, fmt.Errorf("attach to %s: the monitor refused", c.Name)
		}
		e.op.Lock()
		c = *e.c
		e.op.Unlock()
		return a, c, nil
	case <-ctx.Done():
		e.op.Lock()
		e.pending = slices.DeleteFunc(e.pending, func(p chan *monitor.Attachment) bool { return p == ch })
		e.op.Unlock()
		select {
		case a := <-ch: // start handed it over as we gave up
			if a != nil {
				a.Close()
			}
		default:
		}
		return nil, c, ctx.Err()
	}
}

// reattach attaches again to the run with pid once a monitor serves it;
// nil when that run is over.
func (m *Manager) reattach(ctx context.Context, e *entry, pid int) (*monitor.Attachment, error) {
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		e.op.Lock()
		running := (e.c.State.Status == Running || e.c.State.Status == Paused) && e.c.State.Pid == pid
		e.op.Unlock()
		if !running {
			return nil, nil
		}
		if a, err := m.monitor.Attach(ctx, e.c.ID); err == nil {
			return a, nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// copyStdin copies r to the container's input. When r ends, a container
// created with StdinOnce gets EOF (both ends of its stdin are closed: the
// monitor's and the daemon's).
func (m *Manager) copyStdin(e *entry, c Container, r io.Reader) {
	e.op.Lock()
	var w *os.File
	if e.streams != nil && e.c.State.Pid == c.State.Pid {
		w = e.streams.Stdin
		if c.Config.Tty {
			w = e.streams.Pty
		}
	}
	e.op.Unlock()
	if w == nil {
		return
	}
	_, _ = io.Copy(w, r)
	if !c.Config.StdinOnce || c.Config.Tty {
		return
	}
	e.op.Lock()
	defer e.op.Unlock()
	if e.c.State.Pid != c.State.Pid || e.streams == nil || e.streams.Stdin == nil {
		return
	}
	if err := m.monitor.CloseStdin(context.Background(), c.ID); err != nil {
		m.log.Warn("close stdin", "container", c.Name, "err", err)
	}
	e.streams.Stdin.Close()
	e.streams.Stdin = nil
}

// Resize sets the window size of a terminal container's pty.
func (m *Manager) Resize(ref string, rows, cols uint) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if !e.c.Config.Tty {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s has no terminal", e.c.Name))
	}
	if e.streams == nil || e.streams.Pty == nil {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running", e.c.Name))
	}
	return setWinsize(e.streams.Pty, rows, cols)
}
