package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates the program on one syscall, as the kernel would.
func run(t *testing.T, p Program, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(p))
	for i, in := range p {
		raw[i] = bpf.RawInstruction{Op: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("program rejected: %v", err)
	}
	// struct seccomp_data: nr, arch, instruction pointer, six arguments.
	// The kernel loads its 32-bit words in native order; x/net/bpf's VM
	// reads packets in network order, so each word is stored big-endian at
	// the offset where the kernel finds it (an argument's low half first,
	// as on a little-endian machine).
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[16+8*i+4:], uint32(a>>32))
	}
	v, err := vm.Run(data)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(v)
}

func nr(t *testing.T, name string) uint32 {
	t.Helper()
	n, ok := lookup(name)
	if !ok {
		t.Fatalf("no syscall %q on this architecture", name)
	}
	return n
}

const eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)

func TestDefaultProfileVerdicts(t *testing.T) {
	if len(nativeSyscalls) == 0 {
		t.Skip("no syscall table for this architecture (this would also skip under CI)")
	}
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_RAW"}
	prof, err := Default(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	cases := []struct {
		name    string
		syscall string
		args    []uint64
		want    uint32
	}{
		{"read is allowed", "read", nil, allow},
		{"execve is allowed", "execve", nil, allow},
		{"unshare needs CAP_SYS_ADMIN", "unshare", []uint64{unix.CLONE_NEWNS}, eperm},
		{"keyctl is refused", "keyctl", nil, eperm},
		{"mount is refused", "mount", nil, eperm},
		{"plain clone is allowed", "clone", []uint64{unix.CLONE_VM | unix.CLONE_THREAD}, allow},
		{"clone into a new user namespace is refused", "clone", []uint64{unix.CLONE_NEWUSER}, eperm},
		{"socket(AF_INET) is allowed", "socket", []uint64{unix.AF_INET}, allow},
		{"socket(AF_ALG) is refused", "socket", []uint64{unix.AF_ALG}, eperm},
		{"personality(PER_LINUX) is allowed", "personality", []uint64{0}, allow},
		{"personality(other) is refused", "personality", []uint64{0x0400000}, eperm},
	}
	for _, c := range cases {
		if got := run(t, p, auditArch, nr(t, c.syscall), c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
	if got := run(t, p, 0x40000003 /* AUDIT_ARCH_I386 */, 1); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("foreign architecture: got %#x, want kill", got)
	}
	if x32Bit != 0 {
		if got := run(t, p, auditArch, x32Bit|nr(t, "read")); got != unix.SECCOMP_RET_KILL_PROCESS {
			t.Errorf("x32 syscall: got %#x, want kill", got)
		}
	}
}

// TestArgumentOperators checks every comparison on 64-bit values against
// Go's own arithmetic, with values chosen to differ in either half.
func TestArgumentOperators(t *testing.T) {
	if len(nativeSyscalls) == 0 {
		t.Skip("no syscall table for this architecture (this would also skip under CI)")
	}
	ops := map[specs.LinuxSeccompOperator]func(arg, v, v2 uint64) bool{
		specs.OpEqualTo:      func(a, v, _ uint64) bool { return a == v },
		specs.OpNotEqual:     func(a, v, _ uint64) bool { return a != v },
		specs.OpGreaterThan:  func(a, v, _ uint64) bool { return a > v },
		specs.OpGreaterEqual: func(a, v, _ uint64) bool { return a >= v },
		specs.OpLessThan:     func(a, v, _ uint64) bool { return a < v },
		specs.OpLessEqual:    func(a, v, _ uint64) bool { return a <= v },
		specs.OpMaskedEqual:  func(a, m, v uint64) bool { return a&m == v },
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() uint64 {
		vals := []uint64{0, 1, 0xffffffff, 0x100000000, 0x1_00000001, 0xffffffff_ffffffff, 0x7fffffff_00000000}
		if r.IntN(2) == 0 {
			return vals[r.IntN(len(vals))]
		}
		return r.Uint64() >> (r.IntN(4) * 16)
	}
	for op, want := range ops {
		for range 200 {
			v, v2 := pick(), pick()
			if op == specs.OpMaskedEqual {
				v2 &= v
			}
			prof := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{
					Names: []string{"write"}, Action: specs.ActErrno,
					Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: v2, Op: op}},
				}},
			}
			p, err := Compile(prof)
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				arg := pick()
				if r.IntN(3) == 0 {
					arg = v + uint64(r.IntN(3)) - 1
				}
				got := run(t, p, auditArch, nr(t, "write"), 0, 0, arg) == eperm
				if got != want(arg, v, v2) {
					t.Fatalf("%s(value=%#x, valueTwo=%#x) on %#x: matched=%v, want %v", op, v, v2, arg, got, !got)
				}
			}
		}
	}
}

func TestProgramBytesRoundTrip(t *testing.T) {
	p := Program{{Op: 1, Jt: 2, Jf: 3, K: 0xdeadbeef}, {Op: 6, K: 7}}
	q, err := ParseProgram(p.Bytes())
	if err != nil || len(q) != 2 || q[0] != p[0] || q[1] != p[1] {
		t.Fatalf("round trip: %v, %v", q, err)
	}
	if _, err := ParseProgram(make([]byte, 7)); err == nil {
		t.Fatal("a truncated program parsed")
	}
}

func TestCompileRefusesNotify(t *testing.T) {
	_, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActNotify})
	if err == nil {
		t.Fatal("notify compiled")
	}
}
