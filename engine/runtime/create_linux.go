package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
	"github.com/berth-dev/berth/engine/runtime/seccomp"
	"github.com/berth-dev/berth/internal/failpoint"
)

// Create sets up the container id from the bundle and leaves it created:
// its process exists, as a child of the caller, in its namespaces and
// cgroup and inside its root filesystem, and waits for Start to exec the
// spec's process. On failure nothing of it remains.
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio IO) (Process, error) {
	return r.createFrom(ctx, id, bundle, stdio, nil)
}

// CreatePrepared is Create with a setup stage started by Prepare, which it
// takes over (and its stdio): the container's process is p's. A stage
// that does not fit the spec (other namespaces) is closed and a new one
// started, with the same stdio, as Create does.
func (r *Runtime) CreatePrepared(ctx context.Context, id, bundle string, p *Prepared) (Process, error) {
	defer p.Close()
	return r.createFrom(ctx, id, bundle, p.io, p)
}

func (r *Runtime) createFrom(ctx context.Context, id, bundle string, stdio IO, prep *Prepared) (Process, error) {
	if err := checkID(id); err != nil {
		return Process{}, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return Process{}, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	if err := Validate(spec); err != nil {
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	ns, err := planNamespaces(spec.Linux.Namespaces)
	if err != nil {
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return Process{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("create container %s: root filesystem %s is not a directory", id, rootfs))
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if os.IsExist(err) {
			return Process{}, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("container %s already exists", id))
		}
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	defer unlock()
	rec := &record{
		ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(),
		Cgroup: r.cgroupPath(id, spec),
	}
	// Saved before anything is made on the host, so that Delete finds the
	// cgroup to remove even if this process dies half-way.
	if err := save(dir, rec); err != nil {
		os.RemoveAll(dir)
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	var early *earlyStage
	if prep != nil {
		netPath, err := prep.fits(id, ns, rec.Cgroup)
		if err == nil {
			early = &earlyStage{c: prep.c, netPath: netPath}
			prep.c = nil
		} else {
			r.log.Warn("container "+id+": prepared setup stage not used: "+err.Error(), "container", id)
			prep.Close() // now: its cgroup may be the one about to be made
		}
	}
	p, err := r.create(ctx, dir, rec, spec, ns, stdio, early)
	if err != nil {
		if derr := r.destroy(rec); derr != nil {
			err = errors.Join(err, derr)
		}
		return Process{}, fmt.Errorf("create container %s: %w", id, err)
	}
	return p, nil
}

// cgroupPath is the container's cgroup: the spec's cgroupsPath (relative
// ones under the runtime's parent) or PARENT/ID.
func (r *Runtime) cgroupPath(id string, spec *specs.Spec) string {
	p := spec.Linux.CgroupsPath
	switch {
	case p == "":
		return r.defaultCgroup(id)
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	default:
		return filepath.Join("/", r.cfg.CgroupParent, p)
	}
}

// earlyStage is a prepared setup stage that create takes over, and the
// network namespace it is to enter.
type earlyStage struct {
	c       *child
	netPath string
}

func (r *Runtime) create(ctx context.Context, dir string, rec *record, spec *specs.Spec, ns nsPlan, stdio IO, early *earlyStage) (Process, error) {
	cg, err := r.host.Cgroup(rec.Cgroup)
	if err != nil {
		return Process{}, err
	}
	// The pids limit waits until setup is done: the setup stage is a Go
	// program, whose threads count against pids.max, and a container
	// limited to a handful of processes must still start. Its threads end
	// at execve.
	res, pids := splitPids(spec.Linux.Resources)
	makeCgroup := func() error {
		if early == nil {
			if err := cg.Create(); err != nil {
				return err
			}
		}
		return r.setResources(rec.ID, cg, res)
	}
	// The child is born in its cgroup, which must exist first: cloned
	// into it on v2, cloned by a thread that joined it on v1 (a process
	// moved there after the clone would wait for an RCU grace period; see
	// cgroups.Cgroup.JoinThread).
	cgfd := -1
	if early == nil {
		if err := makeCgroup(); err != nil {
			return Process{}, err
		}
		if r.host.Version == cgroups.V2 {
			fd, _, err := cg.CloneFD()
			if err != nil {
				return Process{}, err
			}
			cgfd = fd
			defer unix.Close(cgfd)
		}
	}
	var prog seccomp.Program
	if spec.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return Process{}, err
		}
	}
	fifoPath := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return Process{}, fmt.Errorf("make exec fifo: %w", err)
	}
	// Opened read-write, so that neither this open nor the child's reads
	// wait for a writer; Start opens the write side.
	fifo, err := os.OpenFile(fifoPath, os.O_RDWR, 0)
	if err != nil {
		return Process{}, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()
	var c *child
	var handoff []int // descriptors sent with the bootstrap: the fifo, the network namespace
	if early != nil {
		// Already cloned and started: it gets the exec fifo, and the
		// network namespace to enter, with its bootstrap.
		c = early.c
		handoff = append(handoff, int(fifo.Fd()))
		if early.netPath != "" {
			nsf, err := os.Open(early.netPath)
			if err != nil {
				c.abort()
				return Process{}, fmt.Errorf("open network namespace %s: %w", early.netPath, err)
			}
			defer nsf.Close()
			handoff = append(handoff, int(nsf.Fd()))
		}
	} else {
		req := spawnRequest{
			ns: ns, pidfd: -1, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings,
			cgroupFD: cgfd, io: stdio, fifo: fifo,
		}
		if cgfd < 0 {
			req.cgroup = cg
		}
		c, err = r.spawn(req)
		if err != nil {
			return Process{}, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			c.abort()
		}
	}()
	if early != nil {
		// Prepare made the cgroup and put the stage in it: only the
		// spec's limits are left to set.
		if err := makeCgroup(); err != nil {
			return Process{}, err
		}
	}
	if err := failpoint.Inject("runtime/after-clone"); err != nil {
		return Process{}, err
	}
	boot := &bootstrap{
		Mode: modeContainer, Spec: withoutSeccomp(spec), Rootfs: rec.Rootfs, Bundle: rec.Bundle,
		Seccomp: prog.Bytes(), New: ns.new, Cgroups: cg.Mounts(), Failpoints: r.childFailpoints(),
		ExtraFiles: len(stdio.ExtraFiles), Handoff: len(handoff) > 0, JoinNet: len(handoff) > 1,
	}
	if spec.Linux.Seccomp != nil {
		boot.SeccompFlags = spec.Linux.Seccomp.Flags
	}
	console, err := r.handshake(ctx, c, rec.ID, boot, stdio.ConsoleSocket, handoff...)
	if err != nil {
		return Process{}, err
	}
	if pids != nil {
		if err := r.setResources(rec.ID, cg, pids); err != nil {
			if console != nil {
				console.Close()
			}
			return Process{}, err
		}
	}
	rec.Ready, rec.Pid, rec.Spec = true, c.pid, spec
	rec.PidStart, err = startTime(c.pid)
	if err == nil {
		err = save(dir, rec)
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

// defaultCgroup is the cgroup of container id when its spec names none.
func (r *Runtime) defaultCgroup(id string) string { return "/" + r.cfg.CgroupParent + "/" + id }

// removeParentIfEmpty removes the state root's parent cgroup with its last
// container, when cgroup (a container's) is under it.
func (r *Runtime) removeParentIfEmpty(cgroup string) {
	if parent := "/" + r.cfg.CgroupParent; filepath.Dir(cgroup) == parent {
		r.RemoveSpareCgroups()
		r.host.RemoveIfEmpty(parent)
	}
}

// splitPids separates the pids limit from the other resources.
func splitPids(r *specs.LinuxResources) (rest, pids *specs.LinuxResources) {
	if r == nil || r.Pids == nil {
		return r, nil
	}
	cp := *r
	cp.Pids = nil
	return &cp, &specs.LinuxResources{Pids: r.Pids}
}

func (r *Runtime) setResources(id string, cg cgroups.Cgroup, res *specs.LinuxResources) error {
	warnings, err := cg.Set(res)
	for _, w := range warnings {
		r.log.Warn("container "+id+": "+w, "container", id)
	}
	return err
}

// handshake sends the bootstrap and reads the child's messages until it is
// ready. A console it sends goes to the console socket, or is returned.
func (r *Runtime) handshake(ctx context.Context, c *child, id string, boot *bootstrap, consoleSocket string, fds ...int) (*os.File, error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			// The child's reads fail once it is dead: that ends the loop below.
			_ = unix.Kill(c.pid, unix.SIGKILL)
		case <-stop:
		}
	}()
	if err := c.ch.send(&message{Type: msgBootstrap, Bootstrap: boot}, fds...); err != nil {
		return nil, r.childFailure(ctx, c, err)
	}
	var console *os.File
	fail := func(err error) (*os.File, error) {
		if console != nil {
			console.Close()
		}
		return nil, err
	}
	for {
		m, fds, err := c.ch.recv()
		if err != nil {
			return fail(r.childFailure(ctx, c, err))
		}
		if m.Type != msgConsole {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		switch m.Type {
		case msgWarning:
			r.log.Warn("container "+id+": "+m.Text, "container", id)
		case msgConsole:
			if len(fds) != 1 {
				return fail(fmt.Errorf("console message without a pty"))
			}
			f := os.NewFile(uintptr(fds[0]), "pty master")
			if consoleSocket == "" {
				console = f
				continue
			}
			err := sendConsole(consoleSocket, f)
			f.Close()
			if err != nil {
				return fail(err)
			}
		case msgError:
			return fail(&SetupError{Step: m.Step, Err: m.Text})
		case msgReady:
			return console, nil
		default:
			return fail(fmt.Errorf("unexpected %s message from the setup stage", m.Type))
		}
	}
}

// childFailure explains why the child stopped talking.
func (r *Runtime) childFailure(ctx context.Context, c *child, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		if ws, ok := c.reap(); ok {
			if ws.Signaled() {
				return fmt.Errorf("setup stage killed by %v", ws.Signal())
			}
			return fmt.Errorf("setup stage exited with status %d", ws.ExitStatus())
		}
		return errors.New("setup stage exited")
	}
	return err
}

// sendConsole passes the pty master to a console socket, as runc does.
// (Raw calls rather than package net: see Logger.)
func sendConsole(path string, master *os.File) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	if err := unix.Sendmsg(fd, []byte("/dev/ptmx"), unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	return nil
}

// withoutSeccomp returns a shallow copy of spec without its seccomp profile,
// which the child receives compiled.
func withoutSeccomp(spec *specs.Spec) *specs.Spec {
	cp := *spec
	if spec.Linux != nil {
		l := *spec.Linux
		l.Seccomp = nil
		cp.Linux = &l
	}
	return &cp
}

// lockDir takes the container's lock, the flock of its state directory.
func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { unix.Close(fd) }, nil
}

// procStat reads a process's start time from /proc/PID/stat (field 22),
// and whether it is still running rather than a zombie.
func procStat(pid int) (start uint64, alive bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	var n uint64
	if _, err := fmt.Sscan(fields[19], &n); err != nil {
		return 0, false, err
	}
	return n, fields[0] != "Z" && fields[0] != "X", nil
}

func startTime(pid int) (uint64, error) {
	n, _, err := procStat(pid)
	return n, err
}
