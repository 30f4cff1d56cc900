package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// State reports a container's state, read from the kernel rather than
// trusted from its file: whether its process still runs (and is the same
// process, not a reused pid), whether Start has released it, whether its
// cgroup is frozen, and whether the OOM killer struck.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	rec, err := r.load(id)
	if err != nil {
		return State{}, err
	}
	return r.state(rec), nil
}

// List reports the state of every container of the state directory.
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	var out []State
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rec, err := r.load(e.Name())
		if err != nil {
			continue // being created or deleted
		}
		out = append(out, r.state(rec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (r *Runtime) state(rec *record) State {
	st := State{
		ID: rec.ID, Bundle: rec.Bundle, Rootfs: rec.Rootfs, Created: rec.Created,
		Cgroup: rec.Cgroup, Status: r.status(rec),
	}
	if rec.Spec != nil {
		st.Annotations = rec.Spec.Annotations
	}
	if st.Status != Stopped {
		st.Pid = rec.Pid
	}
	if cg, err := r.host.Cgroup(rec.Cgroup); err == nil {
		if n, err := cg.OOMKills(); err == nil && n > 0 {
			st.OOMKilled = true
		}
	}
	return st
}

// status derives a container's status from the kernel's view of it.
func (r *Runtime) status(rec *record) Status {
	if !rec.Ready {
		// Setup runs, or ran and died with its creator: the creator holds
		// the container's lock while it lives.
		if locked(r.dir(rec.ID)) {
			return Creating
		}
		return Stopped
	}
	if !r.alive(rec) {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(rec.ID), fifoFile)); err == nil {
		return Created
	}
	if cg, err := r.host.Cgroup(rec.Cgroup); err == nil {
		if frozen, _ := cg.Frozen(); frozen {
			return Paused
		}
	}
	return Running
}

// alive reports whether the container's process is the one it recorded
// and has not ended (a zombie not yet reaped by the caller has ended).
func (r *Runtime) alive(rec *record) bool {
	if rec.Pid <= 0 {
		return false
	}
	start, alive, err := procStat(rec.Pid)
	return err == nil && alive && start == rec.PidStart
}

// locked reports whether someone holds the container's lock.
func locked(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	return false
}

// Start releases a created container: its setup stage execs the spec's process.
func (r *Runtime) Start(ctx context.Context, id string) error {
	rec, unlock, err := r.locked(id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	defer unlock()
	if err := check(id, opStart, r.status(rec)); err != nil {
		return err
	}
	path := filepath.Join(r.dir(id), fifoFile)
	// Non-blocking: the setup stage holds the fifo open for reading, so
	// this open succeeds at once, or fails with ENXIO if it is gone.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("start container %s: its process ended before start: %w", id, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	_, err = unix.Write(fd, []byte{0})
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	// Gone fifo = started: State says running from here on.
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// locked loads a container with its lock held.
func (r *Runtime) locked(id string) (*record, func(), error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	unlock, err := lockDir(r.dir(id))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s does not exist", id))
		}
		return nil, nil, err
	}
	rec, err := r.load(id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return rec, unlock, nil
}

// Kill sends sig to the container's process, or with all to every process
// in its cgroup (which reaches processes outside its pid namespace too,
// when it shares the host's).
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	st := r.status(rec)
	if all {
		cg, err := r.host.Cgroup(rec.Cgroup)
		if err != nil {
			return err
		}
		if sig == unix.SIGKILL {
			return cg.Kill()
		}
		return cg.Signal(sig)
	}
	if err := check(id, opKill, st); err != nil {
		return err
	}
	return r.signal(rec, sig)
}

// signal sends sig to the container's process through a pidfd, checked
// against the recorded start time after it was opened: the signal can
// only reach that process, never one that reused its pid.
func (r *Runtime) signal(rec *record, sig syscall.Signal) error {
	pidfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", rec.Pid, err)
	}
	defer unix.Close(pidfd)
	if !r.alive(rec) {
		return nil
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %d: %w", rec.Pid, err)
	}
	return nil
}

// Delete removes a container: its processes (a created one's setup stage;
// with Force, a running one's), its cgroup, its state. It works on
// whatever a crash or a failed create left; deleting a container that does
// not exist does nothing.
func (r *Runtime) Delete(ctx context.Context, id string, opts DeleteOptions) error {
	rec, unlock, err := r.locked(id)
	if errdefs.IsNotFound(err) {
		// No state file: nothing, or a directory Create made before it died,
		// or the cgroup of a setup stage prepared for it (Prepare) whose
		// caller died before it was used: empty, since the stage dies with
		// its caller.
		if checkID(id) == nil {
			os.RemoveAll(r.dir(id))
			cg := r.defaultCgroup(id)
			r.host.RemoveIfEmpty(cg)
			r.removeParentIfEmpty(cg)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	defer unlock()
	if !opts.Force {
		if err := check(id, opDelete, r.status(rec)); err != nil {
			return err
		}
	}
	if err := r.destroy(rec); err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// destroy kills whatever remains of a container and removes its cgroup and
// state directory. The caller holds its lock.
func (r *Runtime) destroy(rec *record) error {
	var errs []error
	if r.alive(rec) {
		_ = r.signal(rec, unix.SIGKILL)
	}
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err == nil {
		if kerr := cg.Kill(); kerr != nil {
			errs = append(errs, kerr)
		}
		if derr := cg.Destroy(); derr != nil {
			errs = append(errs, derr)
		}
		r.removeParentIfEmpty(rec.Cgroup)
	} else {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(r.dir(rec.ID)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.freeze(id, opPause)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.freeze(id, opResume)
}

func (r *Runtime) freeze(id string, op operation) error {
	rec, unlock, err := r.locked(id)
	if err != nil {
		return fmt.Errorf("%s container %s: %w", op, id, err)
	}
	defer unlock()
	if err := check(id, op, r.status(rec)); err != nil {
		return err
	}
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err != nil {
		return err
	}
	if op == opPause {
		err = cg.Freeze()
	} else {
		err = cg.Thaw()
	}
	if err != nil {
		return fmt.Errorf("%s container %s: %w", op, id, err)
	}
	return nil
}

// Stats reads what the container's processes use.
func (r *Runtime) Stats(ctx context.Context, id string) (Stats, error) {
	rec, err := r.load(id)
	if err != nil {
		return Stats{}, err
	}
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err != nil {
		return Stats{}, err
	}
	cs, err := cg.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	st := Stats{Stats: *cs}
	if r.alive(rec) {
		st.NetRxBytes, st.NetTxBytes = netBytes(rec.Pid)
	}
	return st, nil
}

// netBytes sums the traffic of every interface but lo in the network
// namespace of pid, from /proc/PID/net/dev.
func netBytes(pid int) (rx, tx uint64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(fs[0], 10, 64)
		t, _ := strconv.ParseUint(fs[8], 10, 64)
		rx += r
		tx += t
	}
	return rx, tx
}

// Pids lists the host pids of the container's processes (its cgroup's), for `top`.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err != nil {
		return nil, err
	}
	return cg.Procs()
}
