package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/seccomp"
)

// Exec starts p in the created or running container id: in its namespaces
// and cgroup, with the container's seccomp profile, as a child of the
// caller (who waits for it). It returns once p runs, or with the reason it
// could not start ("executable file not found").
//
// How: a thread of the caller enters the container's namespaces (one
// setns on a pidfd of the container's process, which cannot meet a reused
// pid) and clones berth's setup stage from there, which sets up the
// process (capabilities, user, rlimits, seccomp) and execs it. Forking the
// process itself from that thread, as DESIGN.md first suggested, cannot
// give it its rlimits (they are per process, the caller's) nor install its
// seccomp filter after the clone; the setup stage costs one more Go start
// (about 2 ms). BenchmarkExecTrue measures the whole: 6.5-9 ms for an exec
// of true on the 2-core test machine under load.
//
// A container with its own user namespace cannot be joined (setns into a
// user namespace needs a single-threaded process, and no Go process is):
// there a first setup stage, in the container's other namespaces, clones
// the real one into a sibling user namespace with the same uid and gid
// mappings (one more Go start). The process sees the same files with the
// same owners and can signal the container's processes, but holds no
// capability over the container's own namespaces (it cannot mount or
// configure the network).
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, stdio IO) (Process, error) {
	if p == nil || len(p.Args) == 0 {
		return Process{}, fmt.Errorf("exec in container %s: no args", id)
	}
	rec, err := r.load(id)
	if err != nil {
		return Process{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	// The migration's grace period passes while the setup stage starts
	// (see cgroups.Host.WarmMigration).
	warmed := make(chan struct{})
	go func() { r.host.WarmMigration(); close(warmed) }()
	defer func() { <-warmed }()
	if err := check(id, opExec, r.status(rec)); err != nil {
		return Process{}, err
	}
	spec := rec.Spec
	if spec == nil || spec.Linux == nil {
		return Process{}, fmt.Errorf("exec in container %s: no spec recorded", id)
	}
	pidfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		return Process{}, fmt.Errorf("exec in container %s: pidfd_open: %w", id, err)
	}
	defer unix.Close(pidfd)
	if !r.alive(rec) {
		return Process{}, &TransitionError{ID: id, Operation: string(opExec), From: Stopped}
	}
	var flags uintptr
	userns := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			userns = true
			continue
		}
		flags |= cloneFlag(ns.Type)
	}
	plan := nsPlan{}
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err != nil {
		return Process{}, err
	}
	var prog seccomp.Program
	if spec.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return Process{}, err
		}
	}
	cgfd, cloned, err := cg.CloneFD()
	if err != nil {
		return Process{}, err
	}
	if cloned {
		defer unix.Close(cgfd)
	}
	c, err := r.spawn(spawnRequest{
		ns: plan, pidfd: pidfd, pidfdFlags: flags,
		uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings,
		cgroupFD: cgfd, io: stdio,
	})
	if err != nil {
		return Process{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	ok := false
	defer func() {
		if !ok {
			c.abort()
		}
	}()
	if !cloned {
		if err := cg.Join(c.pid); err != nil {
			return Process{}, fmt.Errorf("exec in container %s: %w", id, err)
		}
	}
	boot := &bootstrap{
		Mode: modeExec, Spec: execSpec(spec, p), Seccomp: prog.Bytes(),
		Failpoints: r.childFailpoints(), ExtraFiles: len(stdio.ExtraFiles),
	}
	if userns {
		if err := r.relay(c, boot); err != nil {
			return Process{}, fmt.Errorf("exec in container %s: %w", id, err)
		}
		boot.New = []specs.LinuxNamespaceType{specs.UserNamespace}
	}

	if spec.Linux.Seccomp != nil {
		boot.SeccompFlags = spec.Linux.Seccomp.Flags
	}
	console, err := r.handshake(ctx, c, id, boot, stdio.ConsoleSocket)
	if err != nil {
		return Process{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	// After ready the child execs: its end of the socket closes on exec
	// (EOF), or it reports why execve failed.
	m, _, err := c.ch.recv()
	switch {
	case errors.Is(err, io.EOF):
		err = nil // exec'd
	case err != nil:
		err = fmt.Errorf("exec in container %s: %w", id, err)
	case m.Type == msgError:
		err = fmt.Errorf("exec in container %s: %w", id, &SetupError{Step: m.Step, Err: m.Text})
	default:
		err = fmt.Errorf("exec in container %s: unexpected %s message", id, m.Type)
	}
	if err != nil {
		if console != nil {
			console.Close()
		}
		return Process{}, err
	}
	ok = true
	c.ch.close()
	return Process{Pid: c.pid, Console: console}, nil
}

// relay has the first setup stage clone the real one into a user
// namespace of its own, then takes the new one as c.
func (r *Runtime) relay(c *child, boot *bootstrap) error {
	rb := *boot
	rb.Mode = modeRelay
	if err := c.ch.send(&message{Type: msgBootstrap, Bootstrap: &rb}); err != nil {
		return err
	}
	m, fds, err := c.ch.recv()
	if err != nil {
		return r.childFailure(context.Background(), c, err)
	}
	pid := -1
	for _, fd := range fds {
		if pid < 0 {
			pid, err = pidfdPid(fd)
		}
		unix.Close(fd)
	}
	switch m.Type {
	case msgRelayed:
		if pid <= 0 {
			return fmt.Errorf("the relay's pidfd: %v", err)
		}
	case msgError:
		return &SetupError{Step: m.Step, Err: m.Text}
	default:
		return fmt.Errorf("unexpected %s message from the relay", m.Type)
	}
	// The relay exits at once; its sibling, now ours, waits for bootstrap.
	c.reap()
	c.pid, c.reaped = pid, false
	return nil
}

// pidfdPid reads the pid (in our pid namespace) of the process a pidfd refers to.
func pidfdPid(fd int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return -1, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return -1, errors.New("no Pid in the pidfd's fdinfo")
}

// execSpec is the container's spec with p as its process, filled in from
// the container's process where p leaves things unset, as docker exec does.
func execSpec(spec *specs.Spec, p *specs.Process) *specs.Spec {
	cp := *withoutSeccomp(spec)
	proc := *p
	if cp.Process != nil {
		if proc.Capabilities == nil {
			proc.Capabilities = cp.Process.Capabilities
		}
		if proc.Cwd == "" {
			proc.Cwd = cp.Process.Cwd
		}
		if proc.Rlimits == nil {
			proc.Rlimits = cp.Process.Rlimits
		}
		proc.NoNewPrivileges = proc.NoNewPrivileges || cp.Process.NoNewPrivileges
		if proc.OOMScoreAdj == nil {
			proc.OOMScoreAdj = cp.Process.OOMScoreAdj
		}
	}
	cp.Process = &proc
	return &cp
}
