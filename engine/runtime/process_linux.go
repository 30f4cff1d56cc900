package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/seccomp"
	"github.com/berth-dev/berth/internal/failpoint"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// process turns the setup stage into the container's process: terminal,
// working directory, capabilities, user, no_new_privs, rlimits and
// seccomp, then execve. The order is runc's: seccomp as late as possible
// (so the profile need not allow setup's syscalls) unless there is no
// no_new_privs, in which case it needs CAP_SYS_ADMIN and so comes before
// the capabilities are dropped.
func (s *setup) process() error {
	p := s.boot.Spec.Process
	if p == nil || len(p.Args) == 0 {
		return step("process", errors.New("the spec has no process args"))
	}
	var prog seccomp.Program
	if len(s.boot.Seccomp) > 0 {
		var err error
		if prog, err = seccomp.ParseProgram(s.boot.Seccomp); err != nil {
			return step("seccomp", err)
		}
	}
	if p.Terminal {
		if err := s.console(p); err != nil {
			return step("console", err)
		}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return step("cwd", fmt.Errorf("chdir %s: %w", cwd, err))
	}
	if prog != nil && !p.NoNewPrivileges {
		if err := seccomp.Install(prog, s.boot.SeccompFlags); err != nil {
			return step("seccomp", err)
		}
	}
	if err := s.dropPrivileges(p); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return step("no_new_privs", err)
		}
	}
	env := withHome(p.Env, p.User.UID)
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return step("exec", err)
	}
	limits := s.rlimits(p.Rlimits)

	if err := s.ch.send(&message{Type: msgReady}); err != nil {
		return step("ready", err)
	}
	if s.boot.Mode == modeContainer {
		// Created: wait for Start's byte in the exec fifo, parked in Go's
		// poller rather than in a blocking read (see channel).
		if err := waitStart(s.fifo); err != nil {
			return step("wait for start", err)
		}
		if err := failpoint.Inject("runtime/after-start"); err != nil {
			return step("failpoint", err)
		}
	}
	// rlimits only now: a low RLIMIT_NPROC or RLIMIT_NOFILE must not starve
	// the Go runtime of the setup stage, only the process it becomes.
	for _, l := range limits {
		// syscall.Setrlimit, not unix's: it tells syscall.Exec not to put
		// back the soft RLIMIT_NOFILE that Go raised at start.
		if err := syscall.Setrlimit(l.resource, &syscall.Rlimit{Cur: l.soft, Max: l.hard}); err != nil {
			return step("rlimit "+l.name, err)
		}
	}
	// Whatever the caller had open without close-on-exec came along at the
	// clone; only stdio and the extra files may reach the process.
	if err := closeExtraFds(3 + s.boot.ExtraFiles); err != nil {
		return step("close descriptors", err)
	}
	if prog != nil && p.NoNewPrivileges {
		if err := seccomp.Install(prog, s.boot.SeccompFlags); err != nil {
			return step("seccomp", err)
		}
	}
	err = syscall.Exec(path, p.Args, env)
	return step("exec", fmt.Errorf("exec %s: %w", p.Args[0], err))
}

// closeExtraFds marks every descriptor from first on close-on-exec.
func closeExtraFds(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	// Before Linux 5.11: one by one, from /proc.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// waitStart reads Start's byte from the exec fifo, and closes it.
func waitStart(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "exec.fifo")
	defer f.Close()
	var b [1]byte
	_, err := f.Read(b[:])
	return err
}

// dropPrivileges applies the capability sets and switches to the user.
func (s *setup) dropPrivileges(p *specs.Process) error {
	var bounding, effective, permitted, inheritable, ambient capSet
	if c := p.Capabilities; c != nil {
		var unknown []string
		add := func(names []string) capSet {
			set, u := parseCaps(names)
			unknown = append(unknown, u...)
			return set
		}
		bounding, effective, permitted = add(c.Bounding), add(c.Effective), add(c.Permitted)
		inheritable, ambient = add(c.Inheritable), add(c.Ambient)
		if len(unknown) > 0 {
			s.warn("unknown capabilities ignored: %s", strings.Join(unknown, ", "))
		}
	}
	// Root here may itself lack capabilities (this process cannot give what
	// it does not have): keep what it has, and say what was left out.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return step("capabilities", fmt.Errorf("capget: %w", err))
	}
	have := capSet{cur[0].Permitted, cur[1].Permitted}
	if missing := effective.union(permitted).union(inheritable).union(ambient).minus(have); !missing.empty() {
		s.warn("capabilities this process does not hold were left out: %s", strings.Join(missing.names(), ", "))
		effective, permitted = effective.intersect(have), permitted.intersect(have)
		inheritable, ambient = inheritable.intersect(have), ambient.intersect(have)
	}
	last := lastCap()
	for c := 0; c <= last; c++ {
		if !bounding.has(c) {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return step("capabilities", fmt.Errorf("drop %s from the bounding set: %w", capName(c), err))
			}
		}
	}
	// Keep the permitted set across the uid change, then set it exactly.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return step("capabilities", err)
	}
	if err := setUser(p.User); err != nil {
		return step("user", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return step("capabilities", err)
	}
	data := [2]unix.CapUserData{}
	for i := range data {
		data[i] = unix.CapUserData{Effective: effective[i], Permitted: permitted[i], Inheritable: inheritable[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return step("capabilities", fmt.Errorf("capset: %w", err))
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return step("capabilities", err)
	}
	for c := 0; c <= last && !ambient.empty(); c++ {
		if ambient.has(c) {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				s.warn("ambient capability %s not raised: %v", capName(c), err)
			}
		}
	}
	umask := 0o022 // runc's default
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	return nil
}

func capName(c int) string {
	if c < len(capNames) {
		return capNames[c]
	}
	return "capability " + strconv.Itoa(c)
}

// lastCap is the highest capability this kernel has.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(capNames) - 1
}

// setUser switches this thread to the process's user, groups first. Raw
// per-thread syscalls, not Go's (which change every thread of the
// process): only this thread execs, and the others die with the execve.
func setUser(u specs.User) error {
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	var ptr unsafe.Pointer
	if len(groups) > 0 {
		ptr = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(ptr), 0); e != 0 {
		// A user namespace whose setgroups is denied keeps its groups.
		if !(e == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", u.AdditionalGids, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}

// rlimit is one resource limit to apply just before execve.
type rlimit struct {
	name       string
	resource   int
	soft, hard uint64
}

// rlimits resolves the spec's rlimits against what this process may set:
// without CAP_SYS_RESOURCE a hard limit cannot be raised, so it is clamped
// to the current one, with a warning, and never fails the container.
func (s *setup) rlimits(specLimits []specs.POSIXRlimit) []rlimit {
	var out []rlimit
	for _, l := range specLimits {
		res, ok := rlimitResource(l.Type)
		if !ok {
			s.warn("unknown rlimit %s ignored", l.Type)
			continue
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err != nil {
			s.warn("rlimit %s: %v", l.Type, err)
			continue
		}
		soft, hard := l.Soft, l.Hard
		if hard > cur.Max && !hasCapSysResource() {
			s.warn("rlimit %s: hard limit %d is above the current %d, which only CAP_SYS_RESOURCE may raise; clamped to %d",
				l.Type, hard, cur.Max, cur.Max)
			hard = cur.Max
		}
		if soft > hard {
			soft = hard
		}
		out = append(out, rlimit{name: l.Type, resource: res, soft: soft, hard: hard})
	}
	return out
}

// hasCapSysResource reports whether the setup stage holds CAP_SYS_RESOURCE
// in its effective set (read before privileges are dropped).
func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_RESOURCE/32].Effective&(1<<(unix.CAP_SYS_RESOURCE%32)) != 0
}

func rlimitResource(name string) (int, bool) {
	switch name {
	case "RLIMIT_CPU":
		return unix.RLIMIT_CPU, true
	case "RLIMIT_FSIZE":
		return unix.RLIMIT_FSIZE, true
	case "RLIMIT_DATA":
		return unix.RLIMIT_DATA, true
	case "RLIMIT_STACK":
		return unix.RLIMIT_STACK, true
	case "RLIMIT_CORE":
		return unix.RLIMIT_CORE, true
	case "RLIMIT_RSS":
		return unix.RLIMIT_RSS, true
	case "RLIMIT_NPROC":
		return unix.RLIMIT_NPROC, true
	case "RLIMIT_NOFILE":
		return unix.RLIMIT_NOFILE, true
	case "RLIMIT_MEMLOCK":
		return unix.RLIMIT_MEMLOCK, true
	case "RLIMIT_AS":
		return unix.RLIMIT_AS, true
	case "RLIMIT_LOCKS":
		return unix.RLIMIT_LOCKS, true
	case "RLIMIT_SIGPENDING":
		return unix.RLIMIT_SIGPENDING, true
	case "RLIMIT_MSGQUEUE":
		return unix.RLIMIT_MSGQUEUE, true
	case "RLIMIT_NICE":
		return unix.RLIMIT_NICE, true
	case "RLIMIT_RTPRIO":
		return unix.RLIMIT_RTPRIO, true
	case "RLIMIT_RTTIME":
		return unix.RLIMIT_RTTIME, true
	}
	return 0, false
}

// lookPath finds the program as execve will run it: a path with a slash as
// is, else the first executable match in the process's PATH.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("exec %s: %w", file, err)
		}
		return file, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: executable file not found in $PATH (%s): %w", file, path, unix.ENOENT)
}

func executable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EACCES
	}
	return unix.Access(p, unix.X_OK)
}

// withHome adds HOME from the container's /etc/passwd when the spec's
// environment has none, as runc does; "/" when the user has no entry.
func withHome(env []string, uid uint32) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	home := "/"
	if f, err := os.Open("/etc/passwd"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Split(sc.Text(), ":")
			if len(fs) >= 6 && fs[2] == strconv.FormatUint(uint64(uid), 10) && fs[5] != "" {
				home = fs[5]
				break
			}
		}
		f.Close()
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}

// console gives the process a pty from the container's devpts: the slave
// becomes its stdio and controlling terminal, the master goes to the parent.
func (s *setup) console(p *specs.Process) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave from the master, no path to resolve.
	slave, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if e != 0 {
		return fmt.Errorf("open pty slave: %w", e)
	}
	sfd := int(slave)
	defer unix.Close(sfd)
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set window size: %w", err)
		}
	}
	if err := unix.Fchown(sfd, int(p.User.UID), -1); err != nil {
		return fmt.Errorf("chown pty: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(sfd, fd, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return s.ch.send(&message{Type: msgConsole}, master)
}
