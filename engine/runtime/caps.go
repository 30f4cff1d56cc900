package runtime

import "strings"

// capNames are the capabilities Linux knows, by number (capability.h).
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capNumber returns the number of a capability name ("CAP_CHOWN", or
// "chown" as docker's cap_add takes it).
func capNumber(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// capSet is a set of capabilities as the kernel's two 32-bit words hold them.
type capSet [2]uint32

func (s *capSet) add(c int)                { s[c/32] |= 1 << (c % 32) }
func (s capSet) has(c int) bool            { return s[c/32]&(1<<(c%32)) != 0 }
func (s capSet) empty() bool               { return s[0] == 0 && s[1] == 0 }
func (s capSet) union(o capSet) capSet     { return capSet{s[0] | o[0], s[1] | o[1]} }
func (s capSet) intersect(o capSet) capSet { return capSet{s[0] & o[0], s[1] & o[1]} }
func (s capSet) minus(o capSet) capSet     { return capSet{s[0] &^ o[0], s[1] &^ o[1]} }

func (s capSet) names() []string {
	var out []string
	for c := 0; c < 64; c++ {
		if s.has(c) && c < len(capNames) {
			out = append(out, capNames[c])
		}
	}
	return out
}

// parseCaps turns capability names into a set; names this kernel table does
// not know are returned so the caller can warn about them.
func parseCaps(names []string) (capSet, []string) {
	var s capSet
	var unknown []string
	for _, n := range names {
		if c, ok := capNumber(n); ok {
			s.add(c)
		} else {
			unknown = append(unknown, n)
		}
	}
	return s, unknown
}

// AllCapabilities lists every capability name berth knows (for privileged containers).
func AllCapabilities() []string {
	out := make([]string, len(capNames))
	copy(out, capNames[:])
	return out
}
