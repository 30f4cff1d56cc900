// Package runtime is berth's OCI runtime: it turns a runtime-spec bundle (a
// config.json and a root filesystem) into an isolated process, with no runc
// or crun on the machine, and answers for it until it is deleted.
//
// # Lifecycle
//
// A container goes through runc's states (State derives them from the
// kernel: whether the process lives, whether Start released it, whether its
// cgroup is frozen):
//
//	         Create              Start             exit             Delete
//	(none) ─────────> created ─────────> running ───────> stopped ─────────> (none)
//	  creating while                      │   ▲
//	  the setup runs                Pause │   │ Resume
//	                                      ▼   │
//	                                     paused
//
// Create re-executes the caller's own binary (Config.Binary, which must
// dispatch InitEntry to Init) in the container's new namespaces and cgroup.
// That setup stage mounts the spec's filesystems, pivots into the root
// filesystem, drops privileges, and waits; the process it execs later, at
// Start, is the user's process, with the same pid: pid 1 of the container
// when it has its own pid namespace. That pid is a child of the process
// that called Create (the monitor reaps it with wait4; nothing here waits
// for it), and the caller's stdio (pipes it holds, or a pty) is the
// process's stdio.
//
// State is kept in one directory per container under Config.StateDir, as
// runc keeps it under --root: whoever holds the same StateDir (the monitor,
// `berth runtime`, the daemon reading state) sees the same containers.
// Cgroups are named after Config.CgroupParent, so that two state roots never
// touch each other's containers.
//
// Prepare starts a container's setup stage before its bundle exists, so
// that the stage's clone and start-up overlap the caller's own work;
// CreatePrepared then gives it the bundle. The stage enters what is only
// known then (its mount namespace, a network namespace to join) on the
// thread that sets up and execs.
//
// Exec starts another process in a running container's namespaces and
// cgroup, also as the caller's child, for `berth exec` and healthchecks.
//
// # Example
//
//	rt, _ := runtime.New(runtime.Config{StateDir: "/var/lib/berth/runtime"})
//	p, err := rt.Create(ctx, "web-1", "/var/lib/berth/bundles/web-1", runtime.IO{Stdout: w, Stderr: w})
//	err = rt.Start(ctx, "web-1")
//	// ... the caller waits for p.Pid ...
//	err = rt.Delete(ctx, "web-1", runtime.DeleteOptions{})
package runtime

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

// InitEntry is the first argument that makes a re-executed berth the
// setup stage of a container or of an exec'd process. cmd/berth maps it to
// Init; a test binary's TestMain must do the same.
const InitEntry = "__berth_runtime_init"

// Config says where a Runtime keeps its containers.
type Config struct {
	// StateDir holds one directory per container (like runc's --root).
	StateDir string
	// CgroupParent is the cgroup, relative to each hierarchy's root, under
	// which containers whose spec has no cgroupsPath get theirs. Default:
	// rootid.CgroupParent(StateDir).
	CgroupParent string
	// Binary is re-executed as the setup stage. Default: this process's own
	// executable. It never runs from a path a container can write to: it
	// is executed from a read-only view (see CVE-2019-5736).
	Binary string
	// Logger receives warnings about what a spec asked and the host could
	// not give (a clamped rlimit, a missing cgroup knob). Default: discarded.
	// A *slog.Logger is one.
	Logger Logger
}

// Logger is where a Runtime says what it could not do as asked. It is an
// interface rather than *slog.Logger so that this package does not import
// log/slog, whose initialisation would come before the setup stage's (see
// the package's init).
type Logger interface {
	Warn(msg string, args ...any)
}

type discard struct{}

func (discard) Warn(string, ...any) {}

// IO is the standard streams of a container's process or of an exec'd one.
type IO struct {
	// Stdin, Stdout and Stderr become fds 0, 1 and 2; nil is /dev/null.
	// With a terminal, they are ignored: the process gets the pty.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become fds 3, 4... of the process (runc's --preserve-fds).
	ExtraFiles []*os.File
	// ConsoleSocket, for a process with a terminal, is the path of a unix
	// socket that receives the pty master (runc's --console-socket
	// protocol). Empty: Create returns the master in Process.Console.
	ConsoleSocket string
}

// Process is a process Create or Exec started, a child of the caller.
type Process struct {
	Pid int
	// Console is the pty master of a process with a terminal when no
	// console socket was given; the caller owns it.
	Console *os.File
}

// Status is a container's lifecycle state, as runc and the OCI spec name them.
type Status string

const (
	Creating Status = "creating" // setup runs
	Created  Status = "created"  // setup done; waits for Start to exec the user's process
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped" // the process ended; only Delete remains
)

// State is what State reports about a container.
type State struct {
	ID          string            `json:"id"`
	Status      Status            `json:"status"`
	Pid         int               `json:"pid,omitempty"` // 0 once stopped
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// OOMKilled is set once the kernel killed a process of the container
	// for exceeding its memory limit.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Cgroup is the container's cgroup path, relative to each hierarchy's root.
	Cgroup string `json:"cgroup"`
}

// OCI returns the state as the runtime-spec's state schema has it (what
// `berth runtime state` prints, like runc state).
func (s State) OCI() specs.State {
	return specs.State{
		Version: specs.Version, ID: s.ID, Status: specs.ContainerState(s.Status),
		Pid: s.Pid, Bundle: s.Bundle, Annotations: s.Annotations,
	}
}

// Stats is what a container's processes use, for `stats`.
type Stats struct {
	cgroups.Stats
	// NetRxBytes and NetTxBytes count the traffic of the container's
	// network namespace, loopback excluded.
	NetRxBytes, NetTxBytes uint64
}

// DeleteOptions modify Delete.
type DeleteOptions struct {
	// Force kills a running or paused container first (runc delete --force).
	Force bool
}

// TransitionError is an operation that the container's state does not
// allow, such as starting a running container.
type TransitionError struct {
	ID        string
	Operation string
	From      Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("container %s is %s: cannot %s it", e.ID, e.From, e.Operation)
}

// Unwrap classes the error as errdefs.ErrFailedPrecondition.
func (e *TransitionError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// SetupError is a failure of the setup stage, at a named step ("mount
// /proc", "pivot_root", "exec"), as the child reported it.
type SetupError struct {
	Step string
	Err  string
}

func (e *SetupError) Error() string { return fmt.Sprintf("setup failed at %s: %s", e.Step, e.Err) }

// Runtime creates and drives the containers of one state directory. Its
// methods may be called from many goroutines; operations on one container
// are serialised by a lock in its state directory, which also holds
// against other processes using the same StateDir.
type Runtime struct {
	cfg  Config
	host *cgroups.Host
	log  Logger

	mu  sync.Mutex // guards exe
	exe *os.File   // read-only view of cfg.Binary, made on first use

	// failpoints arms internal/failpoint in setup stages this Runtime
	// starts, in addition to $BERTH_FAILPOINTS (tests).
	failpoints string
}
