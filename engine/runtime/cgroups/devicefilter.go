package cgroups

import (
	"encoding/binary"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// On cgroup v2, device access is decided by an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup: the kernel calls it
// with the device's type, major, minor and the access asked (mknod, read,
// write) and lets the access through when it returns 1. DeviceFilter
// compiles the spec's device rules (the v1 devices.allow/deny list) into
// that program, by hand: it is a few dozen instructions of one shape.

// eBPF instruction classes, operations and sources used here (linux/bpf.h).
const (
	bpfLDX   = 0x01
	bpfALU   = 0x04
	bpfJMP   = 0x05
	bpfALU64 = 0x07
	bpfW     = 0x00 // word size
	bpfMEM   = 0x60
	bpfK     = 0x00
	bpfX     = 0x08
	bpfMOV   = 0xb0
	bpfAND   = 0x50
	bpfRSH   = 0x70
	bpfJEQ   = 0x10
	bpfJNE   = 0x50
	bpfEXIT  = 0x90
)

// Device types and access bits as the program's context encodes them
// (BPF_DEVCG_DEV_*, BPF_DEVCG_ACC_*).
const (
	devBlock    = 1
	devChar     = 2
	accMknod    = 1
	accRead     = 2
	accWrite    = 4
	accAll      = accMknod | accRead | accWrite
	regCtx      = 1 // r1: struct bpf_cgroup_dev_ctx *
	regType     = 2
	regAccess   = 3
	regMajor    = 4
	regMinor    = 5
	regScratch  = 6
	regReturned = 0
)

// ebpfInsn is one eBPF instruction: opcode, registers, offset, immediate.
type ebpfInsn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

// bpfRule is a normalised device rule: type 0 means any, -1 any number.
type bpfRule struct {
	allow        bool
	typ          int32
	major, minor int64
	access       int32
}

// normaliseDevices applies the v1 semantics of a rule list: a rule for
// every device ("a") sets the default and forgets the rules before it;
// the others are exceptions, the later winning over the earlier.
func normaliseDevices(rules []specs.LinuxDeviceCgroup) (defaultAllow bool, out []bpfRule, err error) {
	defaultAllow = true // a new v1 cgroup inherits its parent's allow-all
	for _, r := range rules {
		d := bpfRule{allow: r.Allow, major: -1, minor: -1}
		switch r.Type {
		case "", "a":
			d.typ = 0
		case "b":
			d.typ = devBlock
		case "c":
			d.typ = devChar
		default:
			return false, nil, fmt.Errorf("device rule type %q", r.Type)
		}
		if r.Major != nil {
			d.major = *r.Major
		}
		if r.Minor != nil {
			d.minor = *r.Minor
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				d.access |= accRead
			case 'w':
				d.access |= accWrite
			case 'm':
				d.access |= accMknod
			default:
				return false, nil, fmt.Errorf("device rule access %q", r.Access)
			}
		}
		if d.typ == 0 && d.major < 0 && d.minor < 0 {
			defaultAllow, out = d.allow, nil
			continue
		}
		out = append(out, d)
	}
	return defaultAllow, out, nil
}

// DeviceFilter compiles device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program, in the kernel's instruction layout.
func DeviceFilter(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	defaultAllow, list, err := normaliseDevices(rules)
	if err != nil {
		return nil, err
	}
	prog := []ebpfInsn{
		// r2 = ctx->access_type & 0xffff (type); r3 = ctx->access_type >> 16 (access)
		{code: bpfLDX | bpfW | bpfMEM, dst: regType, src: regCtx, off: 0},
		{code: bpfALU | bpfMOV | bpfX, dst: regAccess, src: regType},
		{code: bpfALU | bpfAND | bpfK, dst: regType, imm: 0xffff},
		{code: bpfALU | bpfRSH | bpfK, dst: regAccess, imm: 16},
		{code: bpfLDX | bpfW | bpfMEM, dst: regMajor, src: regCtx, off: 4},
		{code: bpfLDX | bpfW | bpfMEM, dst: regMinor, src: regCtx, off: 8},
	}
	// The last matching rule decides: test them last first.
	for i := len(list) - 1; i >= 0; i-- {
		prog = append(prog, ruleBlock(list[i])...)
	}
	prog = append(prog, ret(defaultAllow)...)
	out := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		out = append(out, in.code, in.dst|in.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out, nil
}

// ruleBlock tests one rule: each failed test jumps over the rest of the
// block (to the next rule), a match returns the rule's verdict.
func ruleBlock(d bpfRule) []ebpfInsn {
	var tests [][]ebpfInsn
	if d.typ != 0 {
		tests = append(tests, []ebpfInsn{{code: bpfJMP | bpfJNE | bpfK, dst: regType, imm: d.typ}})
	}
	if d.major >= 0 {
		tests = append(tests, []ebpfInsn{{code: bpfJMP | bpfJNE | bpfK, dst: regMajor, imm: int32(d.major)}})
	}
	if d.minor >= 0 {
		tests = append(tests, []ebpfInsn{{code: bpfJMP | bpfJNE | bpfK, dst: regMinor, imm: int32(d.minor)}})
	}
	if d.access != accAll {
		if d.allow {
			// An allow rule covers a request whose every bit it allows.
			tests = append(tests, []ebpfInsn{
				{code: bpfALU | bpfMOV | bpfX, dst: regScratch, src: regAccess},
				{code: bpfALU | bpfAND | bpfK, dst: regScratch, imm: ^d.access & accAll},
				{code: bpfJMP | bpfJNE | bpfK, dst: regScratch, imm: 0},
			})
		} else {
			// A deny rule refuses a request that asks any bit it denies.
			tests = append(tests, []ebpfInsn{
				{code: bpfALU | bpfMOV | bpfX, dst: regScratch, src: regAccess},
				{code: bpfALU | bpfAND | bpfK, dst: regScratch, imm: d.access},
				{code: bpfJMP | bpfJEQ | bpfK, dst: regScratch, imm: 0},
			})
		}
	}
	verdict := ret(d.allow)
	n := len(verdict)
	for _, t := range tests {
		n += len(t)
	}
	var block []ebpfInsn
	for _, t := range tests {
		for _, in := range t {
			block = append(block, in)
			if in.code&0x07 == bpfJMP {
				// Jump to the end of this block: past what follows it here.
				block[len(block)-1].off = int16(n - len(block))
			}
		}
	}
	return append(block, verdict...)
}

func ret(allow bool) []ebpfInsn {
	v := int32(0)
	if allow {
		v = 1
	}
	return []ebpfInsn{{code: bpfALU64 | bpfMOV | bpfK, dst: regReturned, imm: v}, {code: bpfJMP | bpfEXIT}}
}
