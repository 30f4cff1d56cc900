package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// label names a place in the program being built; resolved to an offset
// when the program is assembled.
type label int32

// op is one instruction of the program being built: an instruction ready
// as is, a conditional jump to labels, an unconditional jump to a label,
// or a label's position. Instructions are assembled as they are emitted
// (no interface values kept): a profile compiles in well under a
// millisecond, which every container start pays.
type op struct {
	raw    bpf.RawInstruction
	cond   bpf.JumpTest // conditional jump, when jt or jf is set
	val    uint32
	jt, jf label // 0: fall through
	ja     label // unconditional jump
	here   label // marks a position, emits nothing
	isCond bool
}

type builder struct {
	ops    []op
	labels label
}

func (b *builder) newLabel() label { b.labels++; return b.labels }
func (b *builder) emit(in bpf.Instruction) {
	raw, err := in.Assemble()
	if err != nil {
		panic(err) // only constant, valid instructions are emitted
	}
	b.ops = append(b.ops, op{raw: raw})
}
func (b *builder) mark(l label)    { b.ops = append(b.ops, op{here: l}) }
func (b *builder) jump(l label)    { b.ops = append(b.ops, op{ja: l}) }
func (b *builder) ret(v uint32)    { b.emit(bpf.RetConstant{Val: v}) }
func (b *builder) load(off uint32) { b.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }

// branch emits "if A <cond> val goto jt else goto jf"; a zero label falls through.
func (b *builder) branch(cond bpf.JumpTest, val uint32, jt, jf label) {
	b.ops = append(b.ops, op{cond: cond, val: val, jt: jt, jf: jf, isCond: true})
}

// assemble resolves labels and returns the kernel's instructions.
func (b *builder) assemble() (Program, error) {
	pos := make([]int, b.labels+1)
	n := 0
	for _, o := range b.ops {
		if o.here != 0 {
			pos[o.here] = n
			continue
		}
		n++
	}
	if n > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: program of %d instructions exceeds the kernel's %d", n, unix.BPF_MAXINSNS)
	}
	p := make(Program, 0, n)
	for _, o := range b.ops {
		if o.here != 0 {
			continue
		}
		next := len(p) + 1
		skip := func(l label) (int, error) {
			if l == 0 {
				return 0, nil
			}
			if pos[l] < next {
				return 0, fmt.Errorf("seccomp: bad jump target")
			}
			return pos[l] - next, nil
		}
		raw := o.raw
		switch {
		case o.ja != 0:
			s, err := skip(o.ja)
			if err != nil {
				return nil, err
			}
			raw, err = bpf.Jump{Skip: uint32(s)}.Assemble()
			if err != nil {
				return nil, err
			}
		case o.isCond:
			st, err := skip(o.jt)
			if err != nil {
				return nil, err
			}
			sf, err := skip(o.jf)
			if err != nil {
				return nil, err
			}
			if st > 255 || sf > 255 {
				return nil, fmt.Errorf("seccomp: conditional jump too far (%d, %d)", st, sf)
			}
			raw, err = bpf.JumpIf{Cond: o.cond, Val: o.val, SkipTrue: uint8(st), SkipFalse: uint8(sf)}.Assemble()
			if err != nil {
				return nil, fmt.Errorf("seccomp: assemble: %w", err)
			}
		}
		p = append(p, Instruction{Op: raw.Op, Jt: raw.Jt, Jf: raw.Jf, K: raw.K})
	}
	return p, nil
}

// rule is one syscall entry of the profile for one syscall number.
type rule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// Compile turns a profile into a program for the native architecture.
// Syscall names unknown on this architecture are skipped, as runc does.
func Compile(s *specs.LinuxSeccomp) (Program, error) {
	if len(nativeSyscalls) == 0 {
		return nil, fmt.Errorf("%w: no syscall table for this architecture", ErrUnsupported)
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("%w: seccomp user notification (listenerPath)", ErrUnsupported)
	}
	if len(s.Architectures) > 0 && !slices.Contains(s.Architectures, nativeArch) {
		return nil, fmt.Errorf("seccomp: profile does not list the native architecture %s", nativeArch)
	}
	defAction, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	// Group the rules by syscall number, in the order the profile lists them.
	// Most syscalls have one rule: it is kept inline, more go to extra.
	type group struct {
		nr    uint32
		first rule
		extra []rule
	}
	var groups []group
	index := make(map[uint32]int, 512)
	for _, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls %v: %w", sc.Names, err)
		}
		for _, a := range sc.Args {
			if a.Index >= 6 {
				return nil, fmt.Errorf("syscalls %v: argument index %d out of range", sc.Names, a.Index)
			}
			if !knownOp(a.Op) {
				return nil, fmt.Errorf("syscalls %v: %w operator %q", sc.Names, ErrUnsupported, a.Op)
			}
		}
		for _, name := range sc.Names {
			nr, ok := lookup(name)
			if !ok {
				continue
			}
			r := rule{action: act, args: sc.Args}
			if i, seen := index[nr]; seen {
				groups[i].extra = append(groups[i].extra, r)
				continue
			}
			index[nr] = len(groups)
			groups = append(groups, group{nr: nr, first: r})
		}
	}

	b := &builder{ops: make([]op, 0, 8*len(groups)+16)}
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	archOK := b.newLabel()
	b.load(offArch)
	b.branch(bpf.JumpEqual, auditArch, archOK, 0)
	b.ret(kill)
	b.mark(archOK)
	b.load(offNr)
	if x32Bit != 0 {
		native := b.newLabel()
		b.branch(bpf.JumpGreaterOrEqual, x32Bit, 0, native)
		b.ret(kill)
		b.mark(native)
	}
	labels := make([]label, len(groups))
	for i, g := range groups {
		labels[i] = b.newLabel()
		next := b.newLabel()
		b.branch(bpf.JumpEqual, g.nr, 0, next)
		b.jump(labels[i])
		b.mark(next)
	}
	b.ret(defAction)
	for i, g := range groups {
		b.mark(labels[i])
		b.rules(g.first, g.extra, defAction)
	}
	return b.assemble()
}

// rules emits a syscall's rules in order: the first that matches decides,
// none matching is the default action.
func (b *builder) rules(first rule, extra []rule, defAction uint32) {
	for i := -1; i < len(extra); i++ {
		r := first
		if i >= 0 {
			r = extra[i]
		}
		if len(r.args) == 0 {
			b.ret(r.action)
			return // later rules for this syscall can never match
		}
		fail := b.newLabel()
		for _, a := range r.args {
			b.cond(a, fail)
		}
		b.ret(r.action)
		b.mark(fail)
	}
	b.ret(defAction)
}

// cond emits a test of one 64-bit argument against the rule's value that
// falls through when it holds and jumps to fail when it does not.
func (b *builder) cond(a specs.LinuxSeccompArg, fail label) {
	lo, hi := uint32(offArgs+8*a.Index), uint32(offArgs+8*a.Index+4) // little-endian halves
	v := a.Value
	vhi, vlo := uint32(v>>32), uint32(v)
	pass := b.newLabel()
	switch a.Op {
	case specs.OpEqualTo:
		b.load(hi)
		b.branch(bpf.JumpEqual, vhi, 0, fail)
		b.load(lo)
		b.branch(bpf.JumpEqual, vlo, 0, fail)
	case specs.OpNotEqual:
		b.load(hi)
		b.branch(bpf.JumpEqual, vhi, 0, pass)
		b.load(lo)
		b.branch(bpf.JumpEqual, vlo, fail, 0)
	case specs.OpMaskedEqual:
		// Value is the mask, ValueTwo the value the masked argument must equal.
		w := a.ValueTwo
		b.load(hi)
		b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
		b.branch(bpf.JumpEqual, uint32(w>>32), 0, fail)
		b.load(lo)
		b.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		b.branch(bpf.JumpEqual, uint32(w), 0, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		// hi > vhi: pass; hi < vhi: fail; equal: compare the low halves.
		low := b.newLabel()
		b.load(hi)
		b.branch(bpf.JumpGreaterThan, vhi, pass, 0)
		b.branch(bpf.JumpEqual, vhi, low, fail)
		b.mark(low)
		b.load(lo)
		if a.Op == specs.OpGreaterThan {
			b.branch(bpf.JumpGreaterThan, vlo, 0, fail)
		} else {
			b.branch(bpf.JumpGreaterOrEqual, vlo, 0, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		// hi < vhi: pass; hi > vhi: fail; equal: compare the low halves.
		low := b.newLabel()
		b.load(hi)
		b.branch(bpf.JumpGreaterOrEqual, vhi, 0, pass)
		b.branch(bpf.JumpEqual, vhi, low, fail)
		b.mark(low)
		b.load(lo)
		if a.Op == specs.OpLessThan {
			b.branch(bpf.JumpGreaterOrEqual, vlo, fail, 0)
		} else {
			b.branch(bpf.JumpGreaterThan, vlo, fail, 0)
		}
	}
	b.mark(pass)
}

func knownOp(o specs.LinuxSeccompOperator) bool {
	switch o {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpMaskedEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual:
		return true
	}
	return false
}

// action returns the seccomp return value of a profile action.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	errno := uint32(unix.EPERM)
	if errnoRet != nil {
		errno = uint32(*errnoRet)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | errno&unix.SECCOMP_RET_DATA, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | errno&unix.SECCOMP_RET_DATA, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%w action %s (user notification)", ErrUnsupported, a)
	}
	return 0, fmt.Errorf("%w action %q", ErrUnsupported, a)
}
