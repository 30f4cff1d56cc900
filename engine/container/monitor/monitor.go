// Package monitor is the one process per state root that is the parent of
// every container's first process (DESIGN.md, process model).
//
// The monitor holds the read ends of the containers' stdout and stderr (or
// the pty master of a terminal container) and the write end of their
// stdin, writes each output line with its time to the container's log,
// copies the raw output to whoever is attached, reaps each container's
// first process and records its exit status in an exit file, and tells
// subscribers (the daemon) that it exited. It keeps no other state, so the
// daemon can die, restart or be upgraded while containers run and lose
// nothing: their output is still logged and their exits recorded.
//
// Its cost per container is a few file descriptors and a few hundred bytes:
// one epoll loop serves every pipe and every pidfd with one shared buffer,
// rather than a process (containerd-shim, conmon) or goroutines per container.
//
// Lifecycle of one container, as the daemon drives it:
//
//	daemon                         monitor                    container
//	  | Create(id, bundle, log) ---> | runtime create ---------> setup, waits
//	  | <------- pid, stdio dups --- | pipes -> log, pidfd -> epoll
//	  | Start(id) -----------------> | runtime start ----------> exec user process
//	  |                              | <----------- output lines, exit
//	  | <----- Exit{id, status} ---- | exit file written (after the last line)
//
// # Surviving SIGKILL
//
// The daemon keeps duplicates of each container's stdio descriptors, sent
// with SCM_RIGHTS when the container is created (and again, all of them,
// when a restarted daemon asks with Streams). So when the monitor is
// killed the pipes keep a reader: a container that writes blocks once the
// pipe is full instead of dying of SIGPIPE, and its stdin and pty stay
// open. The daemon starts a new monitor and hands it the descriptors
// (Adopt); it drains what the pipes hold, so no line is lost. What is lost
// is the exit status of those containers: they were reparented when their
// parent died, and only a parent can read a status. The new monitor still
// learns when they end (pidfd) and records the exit as Lost.
//
// # Upgrade
//
// Upgrade re-executes the monitor in place (execve keeps the pid, the
// children and every descriptor not marked close-on-exec): the monitor
// parks its loop, writes its state (containers, descriptors, partial
// lines) to a memfd, clears close-on-exec on the descriptors it keeps, and
// execs the new binary, which rebuilds its state from the memfd and
// answers the upgrade request on the inherited connection.
//
// # Wire
//
// ROOT/monitor.sock, one request per connection. Every message is a frame:
// a 4-byte big-endian length (of kind and payload), a kind byte, and the
// payload; descriptors ride along as SCM_RIGHTS on the frame's first
// byte. Requests and answers are JSON frames; an attach connection then
// carries output frames (FrameStdout, FrameStderr) and ends with FrameEnd.
package monitor

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Entry is the first argv word that makes berth the monitor:
// `berth __berth_monitor ROOT`.
const Entry = "__berth_monitor"

// SocketName is the monitor's socket inside the state root.
const SocketName = "monitor.sock"

// restoreEnv names the memfd holding the state of an upgraded monitor.
const restoreEnv = "_BERTH_MONITOR_RESTORE"

// Frame kinds.
const (
	FrameJSON   byte = 'j'
	FrameStdout byte = 1
	FrameStderr byte = 2
	FrameEnd    byte = 'e' // an attach stream ends: the output closed
)

// Stream names, as the descriptors of a container are listed.
const (
	StreamStdout = "stdout" // read end of the stdout pipe
	StreamStderr = "stderr" // read end of the stderr pipe
	StreamStdin  = "stdin"  // write end of the stdin pipe
	StreamPty    = "pty"    // pty master of a terminal container
)

// Request is what a client asks of the monitor.
type Request struct {
	// Op is one of ping, prepare, discard, create, start, list, subscribe,
	// streams, adopt, attach, closestdin, upgrade, shutdown.
	Op string `json:"op"`

	ID       string     `json:"id,omitempty"`
	Bundle   string     `json:"bundle,omitempty"`
	Log      LogOptions `json:"log,omitzero"`
	ExitFile string     `json:"exitFile,omitempty"` // where to record the exit
	Stdin    bool       `json:"stdin,omitempty"`    // keep a pipe to the container's stdin
	Terminal bool       `json:"terminal,omitempty"` // give the container a pty
	// Start releases the container at once (create and start in one
	// request, for a caller with nothing to do in between).
	Start bool `json:"start,omitempty"`
	// Namespaces (prepare) are the namespaces the container's spec will
	// list, a path standing for one joined (see runtime.Prepare).
	Namespaces []specs.LinuxNamespace `json:"namespaces,omitempty"`

	// Pid and Streams describe a container to adopt: its first process,
	// and the names of the descriptors sent with the request.
	Pid     int      `json:"pid,omitempty"`
	Streams []string `json:"streams,omitempty"`

	// IfIdle makes shutdown a no-op while containers run.
	IfIdle bool `json:"ifIdle,omitempty"`
	// Binary is the berth executable that upgrade re-executes.
	Binary string `json:"binary,omitempty"`
}

// LogOptions say where and how the monitor logs a container's output.
type LogOptions struct {
	Path     string `json:"path"`
	MaxSize  int64  `json:"maxSize,omitempty"`
	MaxFiles int    `json:"maxFiles,omitempty"`
}

// Response answers a request.
type Response struct {
	Error      string      `json:"error,omitempty"`
	Pid        int         `json:"pid,omitempty"`
	Containers []Container `json:"containers,omitempty"`
	MonitorPid int         `json:"monitorPid,omitempty"`
	Version    string      `json:"version,omitempty"`
	// Streams names the descriptors sent with this answer, in order.
	Streams []string `json:"streams,omitempty"`
	// Done ends a streams answer.
	Done bool `json:"done,omitempty"`
}

// Container is a container the monitor supervises.
type Container struct {
	ID  string `json:"id"`
	Pid int    `json:"pid"`
	// Adopted containers are not the monitor's children: their exit
	// status will be lost.
	Adopted bool `json:"adopted,omitempty"`
	// Paused is set while an attacher lags and the container's output is
	// not read (its writes block).
	Paused bool `json:"paused,omitempty"`
	// Exiting is set once the process ended and until its exit is in its
	// exit file and sent to subscribers: a client that subscribed first
	// will receive it, one that reads the file now would find none.
	Exiting bool `json:"exiting,omitempty"`
}

// Exit is the end of a container's first process, as recorded in its exit
// file and sent to subscribers.
type Exit struct {
	ID       string    `json:"id"`
	Pid      int       `json:"pid"`
	Status   int       `json:"status"`           // as docker reports it: the code, or 128+signal
	Signal   int       `json:"signal,omitempty"` // the signal that ended it, if one did
	ExitedAt time.Time `json:"exitedAt"`
	// Lost is set when the status could not be known: the process was
	// reparented away from the monitor (the monitor was killed) before it
	// ended. Status is then 255.
	Lost bool `json:"lost,omitempty"`
}
