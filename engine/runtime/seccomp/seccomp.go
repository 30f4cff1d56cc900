// Package seccomp compiles an OCI runtime-spec seccomp profile into a
// classic BPF program for seccomp(2), in pure Go, and installs it.
//
// The compiled program is a flat list: check the architecture, reject the
// x32 ABI, then one test per syscall number jumping to that syscall's rules
// (argument comparisons on 64-bit values done as two 32-bit halves), and the
// profile's default action for everything else. The kernel caches the
// verdict of every syscall whose verdict does not depend on its arguments
// (seccomp's action cache, Linux 5.11), so a linear list costs nothing on
// the hot path for the syscalls a program makes most.
//
// Only the native architecture's syscall table is known: syscalls made
// through another ABI (i386's int 0x80, x32) kill the process, as
// libseccomp does for architectures a filter does not list. Docker's
// profile also lists the 32-bit sub-architectures; 32-bit binaries do not
// run under berth's filter.
package seccomp

//go:generate go run gen_sysnum.go amd64 arm64

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Program is a compiled filter: classic BPF instructions as seccomp(2) takes them.
type Program []Instruction

// Instruction is one classic BPF instruction (struct sock_filter).
type Instruction struct {
	Op     uint16
	Jt, Jf uint8
	K      uint32
}

// ErrUnsupported is returned for profiles that use what berth cannot do
// (user notification, an unknown action or operator).
var ErrUnsupported = errors.New("seccomp: unsupported")

// syscallNumber is one row of the native syscall table.
type syscallNumber struct {
	name string
	nr   uint32
}

// Default returns Docker's default profile for spec: the syscalls a
// container may make, widened for the capabilities in spec's bounding set
// (CAP_SYS_ADMIN allows mount, unshare..., as in Docker).
func Default(spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	s := spec
	if s.Process == nil || s.Process.Capabilities == nil {
		// The profile filters by capability; give it an empty set rather than nil.
		cp := *spec
		p := specs.Process{Capabilities: &specs.LinuxCapabilities{}}
		if spec.Process != nil {
			p = *spec.Process
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		cp.Process = &p
		s = &cp
	}
	return seccomp.GetDefaultProfile(s)
}

// Bytes returns the program in the kernel's layout (8 bytes per instruction,
// native byte order), for passing it to another process.
func (p Program) Bytes() []byte {
	b := make([]byte, 0, 8*len(p))
	for _, in := range p {
		b = binary.NativeEndian.AppendUint16(b, in.Op)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// ParseProgram is the inverse of Program.Bytes.
func ParseProgram(b []byte) (Program, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("seccomp: program of %d bytes is not whole instructions", len(b))
	}
	p := make(Program, len(b)/8)
	for i := range p {
		in := b[8*i : 8*i+8]
		p[i] = Instruction{
			Op: binary.NativeEndian.Uint16(in[0:2]),
			Jt: in[2], Jf: in[3],
			K: binary.NativeEndian.Uint32(in[4:8]),
		}
	}
	return p, nil
}

// lookup returns the native number of the named syscall.
func lookup(name string) (uint32, bool) {
	lo, hi := 0, len(nativeSyscalls)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if nativeSyscalls[m].name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(nativeSyscalls) && nativeSyscalls[lo].name == name {
		return nativeSyscalls[lo].nr, true
	}
	return 0, false
}
