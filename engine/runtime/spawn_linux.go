package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

// initEnv is the environment variable that tells the setup stage which of
// its descriptors are the handshake socket, the exec fifo and its own
// binary, and (a fourth field, "prepared") that it was started by Prepare.
const initEnv = "_BERTH_INIT"

// spawnRequest is one setup stage to start.
type spawnRequest struct {
	ns nsPlan
	// pidfd, when >= 0, is a process whose namespaces (pidfdFlags) the
	// thread enters before ns.joins: setns(pidfd) enters them all at once
	// and cannot meet a reused pid.
	pidfd      int
	pidfdFlags uintptr
	uidMaps    []specs.LinuxIDMapping
	gidMaps    []specs.LinuxIDMapping
	cgroupFD   int // clone into this cgroup (v2); -1 for none
	// cgroup (v1) is joined by the cloning thread first, so that the
	// child is born in it (see cgroups.Cgroup.JoinThread); nil for none.
	cgroup   cgroups.Cgroup
	io       IO       // stdio and extra files
	fifo     *os.File // exec fifo, container mode only
	prepared bool     // started by Prepare: its bootstrap is not waiting
}

// child is a setup stage just started.
type child struct {
	pid    int
	ch     *channel
	reaped bool // its pid may belong to another process now
}

// spawn starts the setup stage: berth's binary, from its read-only view,
// as `berth __berth_runtime_init`, cloned into new namespaces and, when
// the request joins some or a v1 cgroup, from a thread that entered them
// first.
func (r *Runtime) spawn(req spawnRequest) (*child, error) {
	exe, err := r.binary()
	if err != nil {
		return nil, err
	}
	parentFd, childFd, err := newChannelPair()
	if err != nil {
		return nil, err
	}
	defer unix.Close(childFd)

	var devnull *os.File
	stdio := []*os.File{req.io.Stdin, req.io.Stdout, req.io.Stderr}
	for i, f := range stdio {
		if f == nil {
			if devnull == nil {
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					unix.Close(parentFd)
					return nil, err
				}
				defer devnull.Close()
			}
			stdio[i] = devnull
		}
	}
	files := make([]uintptr, 0, 6+len(req.io.ExtraFiles))
	for _, f := range stdio {
		files = append(files, f.Fd())
	}
	for _, f := range req.io.ExtraFiles {
		files = append(files, f.Fd())
	}
	syncIdx := len(files)
	files = append(files, uintptr(childFd))
	fifoIdx := -1
	if req.fifo != nil {
		fifoIdx = len(files)
		files = append(files, req.fifo.Fd())
	}
	exeIdx := len(files)
	files = append(files, exe.Fd())

	// The child resolves its own binary through the descriptor it gets at
	// exeIdx: the path is read by execve after the descriptors are in place.
	path := "/proc/self/fd/" + strconv.Itoa(exeIdx)
	// One P and no GC: the setup stage allocates little and lives briefly,
	// and each thread it does not start is one that a pids limit does not
	// count and execve does not have to tear down.
	fds := fmt.Sprintf("%d,%d,%d", syncIdx, fifoIdx, exeIdx)
	if req.prepared {
		fds += ",prepared"
	}
	env := []string{initEnv + "=" + fds, "GOMAXPROCS=1", "GOGC=off"}
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: req.ns.flags,
			Setsid:     true,
		},
	}
	if req.cgroupFD >= 0 {
		attr.Sys.UseCgroupFD = true
		attr.Sys.CgroupFD = req.cgroupFD
	}
	if req.ns.user {
		// Go writes the maps between clone and execve, and the child
		// becomes the namespace's root before execve: exec'd as the host's
		// root, which the namespace does not map, it would lose every
		// capability. (The cloning thread never entered a container's mount
		// namespace here: /proc is the host's, as Go's map writing needs.)
		attr.Sys.UidMappings = idMaps(req.uidMaps)
		attr.Sys.GidMappings = idMaps(req.gidMaps)
		attr.Sys.GidMappingsEnableSetgroups = true
		attr.Sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	argv := []string{"berth", InitEntry}

	var pid int
	if len(req.ns.joins) == 0 && req.pidfd < 0 && req.cgroup == nil {
		pid, err = syscall.ForkExec(path, argv, attr)
	} else {
		pid, err = forkFromNamespaces(req.cgroup, req.ns.joins, req.pidfd, req.pidfdFlags, path, argv, attr)
	}
	goruntime.KeepAlive(stdio)
	goruntime.KeepAlive(req.io.ExtraFiles)
	goruntime.KeepAlive(req.fifo)
	goruntime.KeepAlive(exe)
	if err != nil {
		unix.Close(parentFd)
		return nil, fmt.Errorf("clone setup stage: %w", err)
	}
	ch, err := newChannel(parentFd)
	if err != nil {
		c := &child{pid: pid, ch: &channel{}}
		_ = unix.Kill(pid, unix.SIGKILL)
		c.reap()
		return nil, err
	}
	return &child{pid: pid, ch: ch}, nil
}

// forkFromNamespaces enters the cgroup (when not nil) and the namespaces
// on a locked thread and clones the child from it. The thread is never
// unlocked: its namespaces are no longer the process's (nor its cgroup,
// should leaving it fail), so it dies with its goroutine.
func forkFromNamespaces(cg cgroups.Cgroup, joins []nsJoin, pidfd int, pidfdFlags uintptr, path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	type result struct {
		pid int
		err error
	}
	work := func(out chan<- result) {
		goruntime.LockOSThread() // never unlocked
		pid, err := forkInNamespaces(cg, joins, pidfd, pidfdFlags, path, argv, attr)
		out <- result{pid, err}
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work(done)
			return
		}
		// The main thread: its namespaces are what /proc/self shows and it
		// can never exit, so it must not enter any. Holding it, hand the
		// work to another goroutine, which then cannot land on it.
		inner := make(chan result, 1)
		go work(inner)
		done <- <-inner
		goruntime.UnlockOSThread()
	}()
	res := <-done
	return res.pid, res.err
}

// forkInNamespaces runs on a locked thread that is thrown away afterwards.
func forkInNamespaces(cg cgroups.Cgroup, joins []nsJoin, pidfd int, pidfdFlags uintptr, path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	// First, while the cgroup filesystem is the host's to see.
	if cg != nil {
		leave, err := cg.JoinThread()
		if err != nil {
			return 0, err
		}
		// Out again before the child is returned: this process must not
		// be listed with the container's, and signalled by a kill. (If
		// leaving fails, the thread still dies with its goroutine.)
		defer func() { _ = leave() }()
	}
	// Open every namespace first: entering one changes what the next path means.
	fds := make([]int, 0, len(joins))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, j := range joins {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open %s namespace %s: %w", j.Type, j.Path, err)
		}
		fds = append(fds, fd)
	}
	mnt := pidfdFlags&unix.CLONE_NEWNS != 0
	for _, j := range joins {
		mnt = mnt || j.Type == specs.MountNamespace
	}
	if mnt {
		// A thread sharing its filesystem context with others may not change mount namespace.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return 0, fmt.Errorf("unshare(CLONE_FS): %w", err)
		}
	}
	if pidfd >= 0 {
		if err := unix.Setns(pidfd, int(pidfdFlags)); err != nil {
			return 0, fmt.Errorf("enter the container's namespaces: %w", err)
		}
	}
	for i, j := range joins {
		if err := unix.Setns(fds[i], int(cloneFlag(j.Type))); err != nil {
			return 0, fmt.Errorf("enter %s namespace %s: %w", j.Type, j.Path, err)
		}
	}
	return syscall.ForkExec(path, argv, attr)
}

func idMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// abort kills a setup stage that will not be used and reaps it: nobody
// else knows its pid.
func (c *child) abort() {
	if !c.reaped {
		_ = unix.Kill(c.pid, unix.SIGKILL)
		c.reap()
	}
	if c.ch.f != nil {
		c.ch.close()
	}
}

// reap waits for this child only (wait4 on its pid), retrying on EINTR.
func (c *child) reap() (unix.WaitStatus, bool) {
	var ws unix.WaitStatus
	for {
		pid, err := unix.Wait4(c.pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		c.reaped = true
		return ws, err == nil && pid == c.pid
	}
}
