package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/failpoint"
)

// Stop sends the stop signal, then SIGKILL after timeout (nil: the
// container's stop_grace_period, else 10s), and waits for the exit.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	if e.restartTimer != nil {
		e.restartTimer.Stop()
		e.restartTimer = nil
		if e.c.State.Status == Restarting {
			e.c.State.Status, e.c.State.StoppedByUser = Exited, true
			_ = m.save(e.c)
		}
	}
	if e.c.State.Status != Running && e.c.State.Status != Paused {
		e.op.Unlock()
		return nil
	}
	e.c.State.StoppedByUser = true
	_ = m.save(e.c)
	c := e.c
	grace := defaultStopTimeout
	if c.Config.StopTimeout != nil {
		grace = *c.Config.StopTimeout
	}
	if timeout != nil {
		grace = *timeout
	}
	sig := syscall.SIGTERM
	if c.Config.StopSignal != "" {
		if s, err := ParseSignal(c.Config.StopSignal); err == nil {
			sig = s
		}
	}
	if c.State.Status == Paused {
		_ = m.rt.Resume(ctx, c.ID) // a frozen process cannot handle its signal
	}
	exited := e.exited
	if grace > 0 {
		if err := m.rt.Kill(ctx, c.ID, sig, false); err != nil && !errdefs.IsNotFound(err) {
			m.log.Warn("stop signal", "container", c.Name, "err", err)
		}
	}
	e.op.Unlock()
	m.emit(c, "kill", nil)

	select {
	case <-exited:
		return nil
	case <-time.After(grace):
	case <-ctx.Done():
		return ctx.Err()
	}
	e.op.Lock()
	_ = m.rt.Kill(ctx, c.ID, syscall.SIGKILL, true)
	e.op.Unlock()
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("stop container %s: no exit 30s after SIGKILL", c.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends sig to the container's first process.
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if e.c.State.Status != Running && e.c.State.Status != Paused {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running", e.c.Name))
	}
	e.c.State.StoppedByUser = true
	_ = m.save(e.c)
	if err := m.rt.Kill(ctx, e.c.ID, sig, sig == syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill container %s: %w", e.c.Name, err)
	}
	m.emit(e.c, "kill", nil)
	return nil
}

// Pause freezes the container's processes.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	return m.freeze(ctx, ref, true)
}

// Unpause thaws them.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	return m.freeze(ctx, ref, false)
}

func (m *Manager) freeze(ctx context.Context, ref string, pause bool) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	to, action := Paused, "pause"
	if !pause {
		to, action = Running, "unpause"
	}
	if err := CanBecome(e.c.State.Status, to); err != nil {
		return fmt.Errorf("%s container %s: %w", action, e.c.Name, err)
	}
	if pause {
		err = m.rt.Pause(ctx, e.c.ID)
	} else {
		err = m.rt.Resume(ctx, e.c.ID)
	}
	if err != nil {
		return fmt.Errorf("%s container %s: %w", action, e.c.Name, err)
	}
	e.c.State.Status = to
	_ = m.save(e.c)
	m.emit(e.c, action, nil)
	return nil
}

// RemoveOptions modify Remove.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove its anonymous volumes too
}

// Remove deletes a container that does not run (or, with Force, any).
func (m *Manager) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	status := e.c.State.Status
	if (status == Running || status == Paused) && !opts.Force {
		e.op.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %s: container is %s: stop the container before removing or force remove", e.c.Name, status))
	}
	e.removing = true
	e.op.Unlock()
	if status == Running || status == Paused {
		zero := time.Duration(0)
		if err := m.Stop(ctx, e.c.ID, &zero); err != nil {
			e.op.Lock()
			e.removing = false
			e.op.Unlock()
			return err
		}
	}
	_ = failpoint.Inject("container/remove-after-stop") // tests widen the window a start could use
	e.op.Lock()
	defer e.op.Unlock()
	defer func() { e.removing = false }() // a failed remove leaves it startable
	if e.restartTimer != nil {
		e.restartTimer.Stop()
		e.restartTimer = nil
	}
	c := e.c
	if c.State.Status == Running || c.State.Status == Paused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %s: it started again", c.Name))
	}
	never := c.State.StartedAt.IsZero()
	c.State.Status = Removing
	_ = m.save(c)
	var errs []error
	if never {
		// Its setup stage may still wait, prepared at create.
		_ = m.monitor.Discard(ctx, c.ID)
	}
	if err := m.rt.Delete(ctx, c.ID, runtime.DeleteOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, err)
	}
	m.teardownNetwork(c)
	if err := m.unmountRootfs(c.ID); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(m.dir(c.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := m.images.Release(ctx, c.ID); err != nil {
		errs = append(errs, err)
	}
	if opts.Volumes {
		m.removeAnonymousVolumes(c)
	}
	if err := errors.Join(errs...); err != nil {
		c.State.Status = Dead
		_ = m.save(c)
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	m.mu.Lock()
	delete(m.containers, c.ID)
	if m.names[c.Name] == c.ID {
		delete(m.names, c.Name)
	}
	m.mu.Unlock()
	m.emit(c, "destroy", nil)
	return nil
}

// Rename gives a container a new name.
func (m *Manager) Rename(ref, name string) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if !validName.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container name %q", name))
	}
	e.op.Lock()
	defer e.op.Unlock()
	m.mu.Lock()
	if other, ok := m.names[name]; ok && other != e.c.ID {
		m.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(nameInUse(name, other))
	}
	delete(m.names, e.c.Name)
	m.names[name] = e.c.ID
	m.mu.Unlock()
	e.c.Name, e.c.Config.Name = name, name
	return m.saveDurable(e.c)
}

// Wait blocks until the container is not running and returns its exit code.
func (m *Manager) Wait(ctx context.Context, ref string) (int, error) {
	for {
		e, err := m.lookup(ref)
		if err != nil {
			return 0, err
		}
		e.op.Lock()
		exited, status, code := e.exited, e.c.State.Status, e.c.State.ExitCode
		e.op.Unlock()
		if status != Running && status != Paused && status != Restarting {
			return code, nil
		}
		select {
		case <-exited:
			e.op.Lock()
			status, code = e.c.State.Status, e.c.State.ExitCode
			e.op.Unlock()
			if status != Restarting && status != Running {
				return code, nil
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// WaitNextExit waits for the container's next exit and returns its exit
// code, even when the container does not run yet (run: wait, then
// start). ready, when not nil, is called once the wait is in place. A
// container removed when it exits (--rm) is waited for until it is gone
// (up to autoRemoveWait), as docker's run --rm waits.
func (m *Manager) WaitNextExit(ctx context.Context, ref string, ready func()) (int, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return 0, err
	}
	id, autoRemove := e.c.ID, e.c.Config.AutoRemove
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := m.Subscribe(ctx)
	if ready != nil {
		ready()
	}
	died, code := false, 0
	var removal <-chan time.Time
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return 0, ctx.Err()
			}
			if ev.ID != id {
				continue
			}
			switch ev.Action {
			case "die":
				if !autoRemove {
					return ev.ExitCode, nil
				}
				died, code = true, ev.ExitCode
				removal = time.After(autoRemoveWait)
			case "destroy":
				if died {
					return code, nil
				}
				return 0, errdefs.ErrNotFound.WithMessage("container " + ev.Name + " was removed before it exited")
			}
		case <-removal: // a removal that failed is logged
			return code, nil
		}
	}
}

// autoRemoveWait bounds the wait for the removal of a --rm container.
const autoRemoveWait = 10 * time.Second

// Logs calls fn with the container's log entries that opts select; with
// Follow it keeps going until the container stops or ctx ends.
func (m *Manager) Logs(ctx context.Context, ref string, opts logs.ReadOptions, fn func(logs.Entry) error) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	path, done := e.c.LogPath, e.exited
	e.op.Unlock()
	return logs.Read(ctx, path, opts, done, fn)
}
