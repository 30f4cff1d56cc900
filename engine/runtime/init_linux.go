package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/failpoint"
)

// setup is the setup stage's state.
type setup struct {
	ch   *channel
	boot *bootstrap
	fifo int // exec fifo (container mode), -1 in exec mode
	root *rootDir
}

// stepError is a setup failure at a named step.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// step names the step err happened at, keeping the innermost name.
func step(name string, err error) error {
	if err == nil {
		return nil
	}
	var se *stepError
	if errors.As(err, &se) {
		return err
	}
	return &stepError{step: name, err: err}
}

// Init is the setup stage: the body of `berth __berth_runtime_init`,
// started by Create or Exec. It never returns: it execs the container's
// process or exits.
func Init() {
	// Every step below changes the calling thread (capabilities, seccomp,
	// the user, no_new_privs are per thread) and execve runs from it.
	goruntime.LockOSThread()
	// Non-dumpable before anything: processes of the container cannot open
	// /proc/PID/exe or /proc/PID/mem of the setup stage.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	syncFd, fifoFd, exeFd, prepared, err := parseInitEnv(os.Getenv(initEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: setup stage: %v\n", err)
		os.Exit(1)
	}
	// The handle on our own binary did its job at execve.
	if exeFd >= 0 {
		unix.Close(exeFd)
	}
	unix.CloseOnExec(syncFd)
	if fifoFd >= 0 {
		unix.CloseOnExec(fifoFd)
	}
	ch, err := newChannel(syncFd)
	if err != nil {
		os.Exit(1)
	}
	if prepared && !ch.readable() {
		warmDecoder()
	}
	m, fds, err := ch.recv()
	// A claimed spare makes its new namespaces as soon as it is claimed,
	// while the rest of the create goes on: a new network namespace takes
	// most of a millisecond. A failure is told with the bootstrap's answer.
	var unshareErr error
	if err == nil && prepared && m.Type == msgUnshare {
		unshareErr = unix.Unshare(int(m.Unshare))
		m, fds, err = ch.recv()
	}
	if err != nil || m.Type != msgBootstrap || m.Bootstrap == nil || m.Bootstrap.Spec == nil {
		// The parent died or is not a berth that speaks this handshake.
		os.Exit(1)
	}
	if m.Bootstrap.Failpoints != "" {
		os.Setenv(failpoint.Env, m.Bootstrap.Failpoints)
	}
	s := &setup{ch: ch, boot: m.Bootstrap, fifo: fifoFd}
	err = step("namespaces", unshareErr)
	if err == nil {
		err = s.handoff(fds)
	} else {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if err == nil {
		err = s.run()
	}
	// run only returns on failure.
	name := "setup"
	var se *stepError
	if errors.As(err, &se) {
		name = se.step
	}
	if ch.send(&message{Type: msgError, Step: name, Text: err.Error()}) != nil {
		// Nobody listens any more (Start released us and we failed to exec):
		// the process's stderr is the only place left to say it.
		fmt.Fprintf(os.Stderr, "berth: %s: %v\n", name, err)
	}
	code := 1
	if name == "exec" {
		code = 127
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
			code = 126
		}
	}
	os.Exit(code)
}

func parseInitEnv(v string) (syncFd, fifoFd, exeFd int, prepared bool, err error) {
	parts := strings.Split(v, ",")
	if len(parts) == 4 && parts[3] == "prepared" {
		parts, prepared = parts[:3], true
	}
	if len(parts) != 3 {
		return 0, 0, 0, false, fmt.Errorf("%s=%q: not started by berth's runtime", initEnv, v)
	}
	var n [3]int
	for i, p := range parts {
		if n[i], err = strconv.Atoi(p); err != nil {
			return 0, 0, 0, false, fmt.Errorf("%s=%q: %w", initEnv, v, err)
		}
	}
	return n[0], n[1], n[2], prepared, nil
}

// warmBootstrap is a bootstrap with one of each kind of value a real one
// carries (TestWarmBootstrapDecodes keeps it in step with the types).
const warmBootstrap = `{"type":"bootstrap","bootstrap":{"mode":"container","spec":{"ociVersion":"1","process":{"terminal":false,"user":{"uid":0,"gid":0,"additionalGids":[0]},"args":["sh"],"env":["A=B"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}],"noNewPrivileges":true,"oomScoreAdj":0},"root":{"path":"/","readonly":false},"hostname":"h","mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}],"annotations":{"a":"b"},"linux":{"sysctl":{"a":"b"},"resources":{"devices":[{"allow":false,"type":"c","major":1,"minor":1,"access":"rwm"}],"memory":{"limit":1,"swap":1},"cpu":{"shares":1,"quota":1,"period":1,"cpus":"0"},"pids":{"limit":1}},"namespaces":[{"type":"pid","path":"/"}],"devices":[{"path":"/dev/x","type":"c","major":1,"minor":1,"fileMode":438,"uid":0,"gid":0}],"maskedPaths":["/a"],"readonlyPaths":["/b"]}},"rootfs":"/","bundle":"/","new":["pid"],"cgroups":[{"Name":"","Dir":"/","Aliases":["a"]}],"extraFiles":0,"handoff":true,"joinNet":true}}`

// warmDecoder decodes warmBootstrap: encoding/json builds its decoders
// for each type the first time it meets it, which makes the first decode
// of a spec in a fresh process cost about a millisecond. A prepared
// stage does it while it waits for its bootstrap.
func warmDecoder() {
	_ = json.Unmarshal([]byte(warmBootstrap), &message{})
}

// handoff takes what a prepared stage gets with its bootstrap (received
// close-on-exec): the exec fifo, and a network namespace to enter; and
// makes its mount namespace. unshare and setns move only this thread,
// which is the one that sets up and execs.
func (s *setup) handoff(fds []int) error {
	want := 0
	if s.boot.Handoff {
		want = 1
		if s.boot.JoinNet {
			want = 2
		}
	}
	if len(fds) != want {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return step("handoff", fmt.Errorf("%d descriptors came with the bootstrap, %d expected", len(fds), want))
	}
	if want == 0 {
		return nil
	}
	s.fifo = fds[0]
	// Now, not at clone: the root filesystem was mounted after the clone.
	// unshare(CLONE_NEWNS) gives this thread alone (with its own fs_struct)
	// the new namespace; it execs the container's process. A spare stage
	// leaves the idle priority it started with, if Claim could not (the
	// process inherits this thread's).
	if attr, err := unix.SchedGetAttr(0, 0); err == nil && attr.Policy == unix.SCHED_IDLE {
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0); err != nil {
			return step("priority", err)
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return step("mount namespace", err)
	}
	if want == 2 {
		err := unix.Setns(fds[1], unix.CLONE_NEWNET)
		unix.Close(fds[1])
		if err != nil {
			return step("enter network namespace", err)
		}
	}
	return nil
}

func (s *setup) warn(format string, args ...any) {
	_ = s.ch.send(&message{Type: msgWarning, Text: fmt.Sprintf(format, args...)})
}

func (s *setup) run() error {
	if s.boot.Mode == modeRelay {
		return s.relay()
	}
	if s.boot.Mode == modeContainer {
		if err := s.container(); err != nil {
			return err
		}
	} else if err := s.oomScoreAdj(); err != nil {
		return err
	}
	return s.process()
}

// container sets up a new container's namespaces and root filesystem.
func (s *setup) container() error {
	b := s.boot
	spec := b.Spec
	// Nodes and directories get exactly the modes asked for (no chmod
	// after each mknod); the process's own umask is set before it execs.
	unix.Umask(0)
	if b.isNew(specs.CgroupNamespace) {
		// Now, not at clone time: a claimed spare stage may have moved to
		// its container's cgroup since (v2), and the namespace's root is
		// where we are.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return step("cgroup namespace", err)
		}
	}
	if b.isNew(specs.UTSNamespace) {
		if spec.Hostname != "" {
			if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
				return step("hostname", err)
			}
		}
		if spec.Domainname != "" {
			if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
				return step("domainname", err)
			}
		}
	}
	if b.isNew(specs.NetworkNamespace) {
		if err := loopbackUp(); err != nil {
			return step("bring up lo", err)
		}
	}
	if err := s.oomScoreAdj(); err != nil {
		return err
	}
	if err := s.setupRootfs(); err != nil {
		return err
	}
	if err := failpoint.Inject("runtime/before-pivot"); err != nil {
		return step("failpoint", err)
	}
	if err := s.pivotRoot(); err != nil {
		return step("pivot_root", err)
	}
	if err := failpoint.Inject("runtime/after-pivot"); err != nil {
		return step("failpoint", err)
	}
	return s.finishRootfs()
}

// loopbackUp sets lo up in the new network namespace, as Docker does even
// for network_mode none: 127.0.0.1 works in every container.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// oomScoreAdj applies process.oomScoreAdj. Lowering it needs
// CAP_SYS_RESOURCE, which root may lack: then it stays and a warning says so.
func (s *setup) oomScoreAdj() error {
	p := s.boot.Spec.Process
	if p == nil || p.OOMScoreAdj == nil {
		return nil
	}
	err := writeProcFile("/proc/self/oom_score_adj", strconv.Itoa(*p.OOMScoreAdj))
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		cur, _ := os.ReadFile("/proc/self/oom_score_adj")
		s.warn("oom_score_adj %d needs CAP_SYS_RESOURCE to lower; kept %s", *p.OOMScoreAdj, strings.TrimSpace(string(cur)))
		return nil
	}
	return step("oom_score_adj", err)
}

// relay runs inside a user-namespaced container's namespaces (all but the
// user namespace, which no Go process can enter) and clones the exec setup
// stage into a new user namespace with the container's id mappings, as a
// sibling (CLONE_PARENT): a child of Exec's caller. Go writes the maps
// through this process's /proc, which is the container's, where the pid
// clone returns is valid. The relay then exits.
func (s *setup) relay() error {
	l := s.boot.Spec.Linux
	files := []uintptr{0, 1, 2}
	for i := 0; i < s.boot.ExtraFiles; i++ {
		files = append(files, uintptr(3+i))
	}
	syncIdx := len(files)
	files = append(files, uintptr(s.ch.fd))
	attr := &syscall.ProcAttr{
		Env:   []string{fmt.Sprintf("%s=%d,-1,-1", initEnv, syncIdx), "GOMAXPROCS=1", "GOGC=off"},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 unix.CLONE_PARENT | unix.CLONE_NEWUSER,
			UidMappings:                idMaps(l.UIDMappings),
			GidMappings:                idMaps(l.GIDMappings),
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
			Setsid:                     true,
		},
	}
	// The pid clone returns here is the container's view of it; the parent
	// learns its own from a pidfd.
	pidfd := -1
	attr.Sys.PidFD = &pidfd
	// /proc/self/exe is the read-only view this relay runs from.
	if _, err := syscall.ForkExec("/proc/self/exe", []string{"berth", InitEntry}, attr); err != nil {
		return step("clone into a user namespace", err)
	}
	if pidfd < 0 {
		return step("clone into a user namespace", errors.New("no pidfd"))
	}
	if err := s.ch.send(&message{Type: msgRelayed}, pidfd); err != nil {
		return step("relay", err)
	}
	os.Exit(0)
	return nil
}
