package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

const (
	// auditArch is AUDIT_ARCH_AARCH64.
	auditArch  = 0xc00000b7
	nativeArch = specs.ArchAARCH64
	x32Bit     = 0 // no second ABI sharing the architecture value
)
