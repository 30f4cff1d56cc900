package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

const (
	// auditArch is AUDIT_ARCH_X86_64, what seccomp_data.arch holds for native syscalls.
	auditArch  = 0xc000003e
	nativeArch = specs.ArchX86_64
	// x32Bit marks syscalls of the x32 ABI, which share the native
	// architecture value: the filter must reject them itself.
	x32Bit = 0x40000000
)
