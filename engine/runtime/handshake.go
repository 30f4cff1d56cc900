package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

// The parent (Create or Exec, in the caller's process) and the child (the
// setup stage, berth re-executed as `berth __berth_runtime_init`) talk over
// a SOCK_SEQPACKET socket pair: one JSON message per packet, file
// descriptors riding along as SCM_RIGHTS.
//
//	parent                                         child (setup stage)
//	  │ clone(new namespaces, uid/gid maps,
//	  │       into the cgroup: CLONE_INTO_CGROUP
//	  │       on v2, from a thread that joined
//	  │       it on v1) ───────────────────────────> │ Go runtime starts, main dispatches
//	  │                                              │ lock thread, PR_SET_DUMPABLE 0
//	  │ (a claimed spare: ── unshare{flags} ───────> │ its new namespaces, at once)
//	  │ ── bootstrap{mode, spec, seccomp, ...} ────> │ namespaces: cgroup, hostname, lo up
//	  │                                              │ rlimits, oom_score_adj
//	  │                                              │ mounts, /dev, pivot_root,
//	  │                                              │ sysctls, masks, read-only paths
//	  │ <───────────────────────── warning{text} ─── │ (any number, e.g. a clamped rlimit)
//	  │ <──────────────────── console{} + pty fd ─── │ (process.terminal)
//	  │                                              │ caps, user, no_new_privs
//	  │ <────────────────────────────── ready{} ──── │
//	  │ (or) <──────────── error{step, message} ──── │ exit 1
//	  │ create: record the pid, return               │ create: block reading exec.fifo
//	Start: one byte into exec.fifo ────────────────> │ seccomp, execve(process.args)
//	                                                 │ exec: seccomp, execve at once;
//	  │ exec: EOF (close-on-exec) = exec done,       │ a failed execve is sent as an
//	  │       or error{step: exec}                   │ error before the child exits
//
// The child never outlives a parent that died during setup: every read and
// write on the socket fails once the parent end is closed, and the child
// exits. Before bootstrap arrives it has done nothing.

// msgType names a handshake message.
type msgType string

const (
	msgBootstrap msgType = "bootstrap" // parent -> child: what to set up
	msgUnshare   msgType = "unshare"   // parent -> child (a claimed spare): make these namespaces now
	msgWarning   msgType = "warning"   // child -> parent: something asked for and not given
	msgConsole   msgType = "console"   // child -> parent: the pty master, as SCM_RIGHTS
	msgReady     msgType = "ready"     // child -> parent: set up; waits for Start (create) or execs (exec)
	msgError     msgType = "error"     // child -> parent: setup failed at Step
	msgRelayed   msgType = "relayed"   // relay -> parent: a pidfd of the exec setup stage
)

// message is one packet of the handshake.
type message struct {
	Type      msgType    `json:"type"`
	Bootstrap *bootstrap `json:"bootstrap,omitempty"`
	Step      string     `json:"step,omitempty"`
	Text      string     `json:"text,omitempty"`
	// Unshare are the namespaces (clone flags) of an unshare message.
	Unshare uintptr `json:"unshare,omitempty"`
}

// setupMode says what the child sets up.
type setupMode string

const (
	modeContainer setupMode = "container" // a new container: mounts, pivot_root, waits for Start
	modeExec      setupMode = "exec"      // one more process in a running container's namespaces
	// modeRelay clones the exec setup stage into a user namespace of its
	// own, from inside the container's other namespaces (see Exec).
	modeRelay setupMode = "relay"
)

// bootstrap is everything the child needs, computed by the parent so that
// the child parses little and decides nothing it could get wrong alone.
type bootstrap struct {
	Mode setupMode `json:"mode"`
	// Spec is the container's spec with its seccomp profile stripped (the
	// compiled program travels in Seccomp). In exec mode, Spec.Process is
	// the process to exec and the rest is the container's spec.
	Spec *specs.Spec `json:"spec"`
	// Rootfs is the absolute host path of the root filesystem (container mode).
	Rootfs string `json:"rootfs,omitempty"`
	// Bundle is the bundle directory; relative bind sources are relative to it.
	Bundle string `json:"bundle,omitempty"`
	// Seccomp is the compiled filter (seccomp.Program.Bytes), empty for none.
	Seccomp []byte `json:"seccomp,omitempty"`
	// SeccompFlags are the profile's flags.
	SeccompFlags []specs.LinuxSeccompFlag `json:"seccompFlags,omitempty"`
	// New lists the namespaces the child was cloned into (as opposed to
	// joined): it sets the hostname only in its own UTS namespace, brings up
	// lo only in its own network namespace.
	New []specs.LinuxNamespaceType `json:"new,omitempty"`
	// Cgroups are the container's cgroup directories, bound at /sys/fs/cgroup.
	Cgroups []cgroups.Mount `json:"cgroups,omitempty"`
	// ExtraFiles is how many descriptors from 3 on are the process's: the
	// setup stage closes every other one at exec.
	ExtraFiles int `json:"extraFiles,omitempty"`
	// Handoff is set for a stage started by Prepare: the exec fifo comes
	// with the bootstrap, not at clone time, and with JoinNet a network
	// namespace to enter after it. Such a stage unshares its mount
	// namespace itself.
	Handoff bool `json:"handoff,omitempty"`
	JoinNet bool `json:"joinNet,omitempty"`
	// Failpoints arms internal/failpoint in the child (tests).
	Failpoints string `json:"failpoints,omitempty"`
}

func (b *bootstrap) isNew(t specs.LinuxNamespaceType) bool {
	for _, n := range b.New {
		if n == t {
			return true
		}
	}
	return false
}
