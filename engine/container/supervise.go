package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/runtime"
)

// connect finds (or starts) the monitor, upgrades it to the manager's
// binary when it runs another, and subscribes to its exits. Subscribing
// comes before anything reads exit files: an exit after it comes through
// the subscription, one before it is in its file.
//
// A monitor that the last daemon asked to end (no container ran) refuses
// requests and holds its lock until it is gone: Ensure then starts one
// that waits for the lock.
func (m *Manager) connect(ctx context.Context) (<-chan monitor.Exit, error) {
	mon, err := monitor.Ensure(ctx, m.root, m.binary)
	if err != nil {
		return nil, err
	}
	m.monitor = mon
	if err := m.upgradeMonitor(ctx); err != nil {
		// An old monitor still serves; containers are safe either way.
		m.log.Warn("monitor upgrade failed; the old monitor keeps serving", "err", err)
	}
	return mon.Subscribe(m.ctx)
}

// upgradeMonitor has the monitor re-execute itself from the manager's
// binary when it runs another file (berth was upgraded): no container
// stops, and the monitor's pid stays the same.
func (m *Manager) upgradeMonitor(ctx context.Context) error {
	resp, err := m.monitor.Ping(ctx)
	if err != nil {
		return err
	}
	mine, err := os.Stat(m.binary)
	if err != nil {
		return err
	}
	// stat of /proc/PID/exe reaches the file the monitor runs, even a
	// replaced (deleted) one.
	theirs, err := os.Stat(fmt.Sprintf("/proc/%d/exe", resp.MonitorPid))
	if err != nil || os.SameFile(mine, theirs) {
		return err
	}
	m.log.Info("upgrading the monitor", "pid", resp.MonitorPid, "from", resp.Version, "binary", m.binary)
	// The new binary answers once it rebuilt the monitor's state; one that
	// does not answer in time is reported, and the caller goes on with
	// whatever monitor then serves.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	up, err := m.monitor.Upgrade(ctx, m.binary)
	if err != nil {
		return err
	}
	m.log.Info("monitor upgraded", "pid", up.MonitorPid, "version", up.Version)
	return nil
}

// restore loads the records and reconciles them with what the monitor
// supervises.
func (m *Manager) restore(ctx context.Context) (starts []*entry, err error) {
	records, broken, err := m.loadRecords()
	if err != nil {
		return nil, err
	}
	for _, id := range broken {
		m.log.Warn("removing a container that a crash left half-created", "id", id)
		_ = m.unmountRootfs(id)
		_ = m.rt.Delete(ctx, id, runtime.DeleteOptions{Force: true})
		if m.networks != nil {
			_ = m.networks.DeleteSandbox(id)
		}
		_ = m.images.Release(ctx, id)
		if vols, err := m.volumes.List(map[string]string{anonymousOwner: id}); err == nil {
			for _, v := range vols {
				_ = m.volumes.Remove(v.Name, nil, true)
			}
		}
		_ = os.RemoveAll(m.dir(id))
	}
	running, err := m.monitor.Streams(ctx)
	if err != nil {
		return nil, err
	}
	claimed := map[string]bool{}
	for _, c := range records {
		e := &entry{c: c, exited: make(chan struct{})}
		m.containers[c.ID] = e
		m.names[c.Name] = c.ID
		// Containers' leases are in memory (see create): each record
		// leases its image again, before anything can remove one.
		if _, err := m.images.LeaseInMemory(ctx, c.ID, c.ImageID); err != nil {
			m.log.Warn("lease the image of a container", "container", c.Name, "image", c.ImageID, "err", err)
		}
		cs, runs := running[c.ID]
		if runs && c.State.Status != Running && c.State.Status != Paused && m.adoptUnrecorded(ctx, e, cs) {
			claimed[c.ID] = true
			continue
		}
		switch c.State.Status {
		case Running, Paused:
			if runs && cs.Pid == c.State.Pid {
				claimed[c.ID] = true
				e.streams = cs.Streams
				m.startHealth(e)
				continue // still running under the monitor
			}
			if m.adoptOrphan(ctx, e, nil) {
				continue
			}
			// It ended while no daemon watched: its exit file says how.
			m.handleExit(e, m.readExit(c))
		case Restarting:
			close(e.exited)
			m.scheduleRestart(e, 0)
		default:
			close(e.exited)
			m.cleanStopped(ctx, c)
			if m.startsWithTheDaemon(c) {
				starts = append(starts, e)
			}
		}
	}
	// A run the monitor created that no record claims, and that was not
	// started (so not adopted above), is a start that a crash cut between
	// the monitor's create and its start.
	for id, cs := range running {
		if claimed[id] {
			continue
		}
		cs.Streams.Close()
		m.log.Warn("stopping a container process that a crash left unrecorded", "id", id, "pid", cs.Pid)
		_ = m.rt.Kill(ctx, id, syscall.SIGKILL, true)
		_ = m.rt.Delete(ctx, id, runtime.DeleteOptions{Force: true})
		if e := m.containers[id]; e != nil && e.c.State.Status != Running && e.c.State.Status != Paused {
			m.cleanStopped(ctx, e.c)
		}
	}
	if m.networks != nil {
		for _, sb := range m.networks.Sandboxes() {
			if e := m.containers[sb.ID]; e == nil || (e.c.State.Status != Running && e.c.State.Status != Paused) {
				if e == nil && !strings.HasPrefix(sb.Owner, "container ") && !strings.HasPrefix(sb.Owner, "service ") {
					continue // not a container's
				}
				m.log.Warn("removing the network sandbox of a container that does not run", "id", sb.ID)
				_ = m.networks.DeleteSandbox(sb.ID)
			}
		}
	}
	return starts, nil
}

// startsWithTheDaemon says whether the restart policy starts c, stopped,
// when a daemon starts, as docker's does: a container that ran before
// and whose policy is always, even if the user stopped it (what tells
// always from unless-stopped), or one whose policy would have restarted
// its last exit (one that came as the last daemon stopped).
func (m *Manager) startsWithTheDaemon(c *Container) bool {
	if c.State.Status != Exited || c.State.StartedAt.IsZero() {
		return false
	}
	return c.Config.RestartPolicy.Name == "always" || m.shouldRestart(c)
}

// startStopped starts the containers that restore found for the restart
// policy, as a user's start would.
func (m *Manager) startStopped(starts []*entry) {
	for _, e := range starts {
		m.log.Info("restart policy: starting a stopped container as the daemon starts", "container", e.c.Name, "policy", e.c.Config.RestartPolicy.Name)
		if err := m.Start(m.ctx, e.c.ID); err != nil && m.ctx.Err() == nil {
			m.log.Warn("restart policy: start failed", "container", e.c.Name, "err", err)
		}
	}
}

// adoptUnrecorded takes over a run the monitor started whose record a
// crash kept from saying so: a start answers before it saves the record
// (see saveSoon). A run the runtime holds created but not started is not
// adopted: the start that made it did not finish.
func (m *Manager) adoptUnrecorded(ctx context.Context, e *entry, cs monitor.ContainerStreams) bool {
	st, err := m.rt.State(ctx, e.c.ID)
	if err != nil || st.Pid != cs.Pid || (st.Status != runtime.Running && st.Status != runtime.Paused) {
		return false
	}
	c := e.c
	c.State = State{Status: Running, Pid: cs.Pid, StartedAt: time.Now().UTC(), Health: initialHealth(c)}
	if st.Status == runtime.Paused {
		c.State.Status = Paused
	}
	if err := m.save(c); err != nil {
		m.log.Warn("save the record of an adopted run", "container", c.Name, "err", err)
	}
	m.log.Warn("adopting a container process whose start a crash left unrecorded", "container", c.Name, "pid", cs.Pid)
	e.streams = cs.Streams
	m.startHealth(e)
	return true
}

// cleanStopped takes away what a crash may have left of a stopped
// container's run: its rootfs mount and its runtime state. Both are no-ops
// when nothing is there.
func (m *Manager) cleanStopped(ctx context.Context, c *Container) {
	if err := m.unmountRootfs(c.ID); err != nil {
		m.log.Warn("unmount rootfs of a stopped container", "container", c.Name, "err", err)
	}
	if err := m.rt.Delete(ctx, c.ID, runtime.DeleteOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
		m.log.Warn("delete runtime state of a stopped container", "container", c.Name, "err", err)
	}
}

// adoptOrphan hands the monitor a container whose process still runs
// although no monitor supervises it (the monitor was killed): with the
// daemon's duplicates of its stdio its output is logged again; its exit
// status will be lost. e.op is held (or e is not shared yet).
func (m *Manager) adoptOrphan(ctx context.Context, e *entry, streams *monitor.Streams) bool {
	c := e.c
	st, err := m.rt.State(ctx, c.ID)
	if err != nil || st.Pid != c.State.Pid || (st.Status != runtime.Running && st.Status != runtime.Paused) {
		return false
	}
	logOpts, _ := logs.ParseOptions(c.Config.Log.Config)
	req := monitor.Request{
		ID: c.ID, Pid: c.State.Pid, ExitFile: m.exitPath(c.ID),
		Log: monitor.LogOptions{Path: c.LogPath, MaxSize: logOpts.MaxSize, MaxFiles: logOpts.MaxFiles},
	}
	if err := m.monitor.Adopt(ctx, req, streams); err != nil {
		m.log.Error("adopt a container whose monitor died", "container", c.Name, "err", err)
		return false
	}
	if streams == nil {
		m.log.Warn("container runs on without its output logged: its monitor died while no daemon held its pipes", "container", c.Name, "pid", c.State.Pid)
	} else {
		m.log.Warn("container adopted by a new monitor: its exit status will be lost", "container", c.Name, "pid", c.State.Pid)
	}
	e.streams = streams
	m.startHealth(e)
	return true
}

// readExit returns the recorded exit of c's current run, or a lost one
// when the monitor recorded none (it was killed while c ran).
func (m *Manager) readExit(c *Container) monitor.Exit {
	var ex monitor.Exit
	if err := readJSON(m.exitPath(c.ID), &ex); err == nil && ex.Pid == c.State.Pid {
		return ex
	}
	return monitor.Exit{ID: c.ID, Pid: c.State.Pid, Status: 255, Lost: true, ExitedAt: time.Now().UTC()}
}

// watchExits handles each exit the monitor reports, and reconnects when
// the monitor goes away (killed, or re-executing itself to upgrade).
func (m *Manager) watchExits(exits <-chan monitor.Exit) {
	defer m.wg.Done()
	for {
		select {
		case ex, ok := <-exits:
			if !ok {
				if m.ctx.Err() != nil || m.shuttingDown.Load() {
					return
				}
				if exits = m.reconnect(); exits == nil {
					return
				}
				continue
			}
			m.mu.Lock()
			e := m.containers[ex.ID]
			m.mu.Unlock()
			if e == nil {
				continue
			}
			e.op.Lock()
			if (e.c.State.Status == Running || e.c.State.Status == Paused) && e.c.State.Pid == ex.Pid {
				m.handleExit(e, ex)
			}
			e.op.Unlock()
		case <-m.ctx.Done():
			return
		}
	}
}

// reconnect brings a monitor back (starting a new one when the old one
// died), subscribes again, and catches up; it retries until it succeeds
// or the manager closes (nil).
func (m *Manager) reconnect() <-chan monitor.Exit {
	m.log.Warn("lost the monitor's exit stream; reconnecting")
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
		exits, err := m.connect(ctx)
		if err == nil {
			err = m.resync(ctx)
			if err == nil {
				cancel()
				m.log.Info("monitor reconnected")
				return exits
			}
		}
		cancel()
		if m.ctx.Err() != nil {
			return nil
		}
		m.log.Warn("reconnect to the monitor", "err", err, "retry in", delay)
		select {
		case <-time.After(delay):
		case <-m.ctx.Done():
			return nil
		}
	}
}

// resync compares the running containers with what the monitor
// supervises: a container it lost (a new monitor after a crash) is adopted
// when its process still runs, and otherwise gets its exit handled.
func (m *Manager) resync(ctx context.Context) error {
	known := map[string]int{}
	list := func() error {
		l, err := m.monitor.List(ctx)
		for _, c := range l {
			known[c.ID] = c.Pid
		}
		return err
	}
	if err := list(); err != nil {
		return err
	}
	lost := func(c *Container) bool {
		pid, ok := known[c.ID]
		return !ok || pid != c.State.Pid
	}
	entries := m.entries()
	var errs []error
	for _, e := range entries {
		e.op.Lock()
		c := e.c
		if c.State.Status == Running || c.State.Status == Paused {
			// A start that the new monitor served after the list was
			// taken is not lost: ask again before adopting it.
			if lost(c) && list() == nil && lost(c) {
				if !m.adoptOrphan(ctx, e, e.streams) {
					if ctx.Err() != nil {
						errs = append(errs, ctx.Err())
					} else {
						m.handleExit(e, m.readExit(c))
					}
				}
			}
		}
		e.op.Unlock()
	}
	return errors.Join(errs...)
}
