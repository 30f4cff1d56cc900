package seccomp

import (
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Install attaches the program to the calling thread, which must be the
// thread that will execve the container's process (lock it first): a filter
// installed without SECCOMP_FILTER_FLAG_TSYNC binds only that thread, and
// execve keeps it. The caller needs no_new_privs or CAP_SYS_ADMIN.
func Install(p Program, flags []specs.LinuxSeccompFlag) error {
	if len(p) == 0 {
		return nil
	}
	var f uintptr
	for _, fl := range flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			f |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// Only meaningful with user notification, which berth does not offer.
		default:
			return fmt.Errorf("seccomp: %w flag %q", ErrUnsupported, fl)
		}
	}
	filters := make([]unix.SockFilter, len(p))
	for i, in := range p {
		filters[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	return nil
}
