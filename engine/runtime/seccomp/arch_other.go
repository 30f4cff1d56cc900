//go:build !amd64 && !arm64

package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// No syscall table for this architecture: Compile refuses every profile.
const (
	auditArch  = 0
	nativeArch = specs.Arch("")
	x32Bit     = 0
)

var nativeSyscalls [0]syscallNumber
