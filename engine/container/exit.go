package container

import (
	"context"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/failpoint"
)

// Restart back-off, as docker does it: 100ms doubling to a minute, back to
// the start once a run lasted 10s.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// handleExit records the end of a run, releases what the run held (cgroup,
// sandbox, rootfs mount) and applies the restart policy. e.op is held.
func (m *Manager) handleExit(e *entry, ex monitor.Exit) {
	c := e.c
	ctx := context.Background()
	if st, err := m.rt.State(ctx, c.ID); err == nil && st.OOMKilled {
		c.State.OOMKilled = true
	}
	if err := m.rt.Delete(ctx, c.ID, runtime.DeleteOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		m.log.Warn("delete runtime state", "container", c.Name, "err", err)
	}
	if e.health != nil {
		e.health()
		e.health = nil
	}
	e.streams.Close()
	e.streams = nil
	m.dropExecs(c.ID)
	m.teardownNetwork(c)
	if err := m.unmountRootfs(c.ID); err != nil {
		m.log.Warn("unmount rootfs", "container", c.Name, "err", err)
	}
	ran := ex.ExitedAt.Sub(c.State.StartedAt)
	c.State.Status, c.State.Pid, c.State.ExitCode, c.State.FinishedAt = Exited, 0, ex.Status, ex.ExitedAt
	if ex.Lost {
		c.State.Error = "exit status lost: the monitor was gone when the process ended"
	}
	if c.State.Health != nil {
		c.State.Health.Status = "unhealthy"
	}
	restart := m.shouldRestart(c)
	if restart {
		c.State.Status = Restarting
	}
	if err := m.save(c); err != nil {
		m.log.Error("save container", "container", c.Name, "err", err)
	}
	select {
	case <-e.exited:
	default:
		close(e.exited)
	}
	m.emit(c, "die", func(ev *Event) { ev.ExitCode = ex.Status })
	if c.Config.AutoRemove && !restart && m.ctx.Err() == nil {
		// Not here: e.op is held. The die event carried the exit code.
		id := c.ID
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_ = failpoint.Inject("container/auto-remove")
			if err := m.Remove(context.Background(), id, RemoveOptions{Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
				m.log.Warn("auto-remove", "container", c.Name, "err", err)
			}
		}()
	}
	if restart {
		delay := restartDelayMin
		if ran < restartResetAfter {
			delay = restartDelayMin << min(c.RestartCount, 10)
			delay = min(delay, restartDelayMax)
		}
		m.scheduleRestart(e, delay)
	}
}

// shouldRestart applies the restart policy to an exit.
func (m *Manager) shouldRestart(c *Container) bool {
	if m.ctx.Err() != nil || c.State.StoppedByUser {
		return false
	}
	p := c.Config.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// scheduleRestart starts e's container again after delay, unless something
// else (stop, remove, a manual start) happens first.
func (m *Manager) scheduleRestart(e *entry, delay time.Duration) {
	if e.restartTimer != nil {
		e.restartTimer.Stop()
	}
	e.restartTimer = time.AfterFunc(delay, func() {
		if m.ctx.Err() != nil {
			return
		}
		e.op.Lock()
		defer e.op.Unlock()
		if e.c.State.Status != Restarting || e.removing {
			return
		}
		e.restartTimer = nil
		e.c.RestartCount++
		e.c.State.Status = Exited // start moves exited -> running
		if err := m.start(m.ctx, e); err != nil {
			m.log.Warn("restart policy: start failed", "container", e.c.Name, "err", err)
			if m.shouldRestart(e.c) {
				e.c.State.Status = Restarting
				_ = m.save(e.c)
				m.scheduleRestart(e, min(restartDelayMin<<min(e.c.RestartCount, 10), restartDelayMax))
			}
		}
	})
}
