// Package monitor is the one process per state root that is the parent of
// every container's first process (DESIGN.md, process model).
//
// The monitor holds the read ends of the containers' stdout and stderr,
// writes each line with its time to the container's log, reaps each
// container's first process and records its exit status in an exit file,
// and tells subscribers (the daemon) that it exited. It keeps no other
// state, so the daemon can die, restart or be upgraded while containers run
// and lose nothing: their output is still logged and their exits recorded.
//
// Its cost per container is a few file descriptors and a few hundred bytes:
// one epoll loop serves every pipe and every pidfd with one shared buffer,
// rather than a process (containerd-shim, conmon) or goroutines per container.
//
// Lifecycle of one container, as the daemon drives it:
//
//	daemon                         monitor                    container
//	  | Create(id, bundle, log) ---> | runtime create ---------> setup, waits
//	  | <------------------ pid ---- | pipes -> log, pidfd -> epoll
//	  | Start(id) -----------------> | runtime start ----------> exec user process
//	  |                              | <----------- output lines, exit
//	  | <----- Exit{id, status} ---- | exit file written (after the last line)
//
// The wire: one request per connection on ROOT/monitor.sock, a JSON line
// each way; Subscribe keeps its connection and receives one JSON line per
// exit.
package monitor

import "time"

// Entry is the first argv word that makes berth the monitor:
// `berth __berth_monitor ROOT`.
const Entry = "__berth_monitor"

// SocketName is the monitor's socket inside the state root.
const SocketName = "monitor.sock"

// Request is what a client asks of the monitor.
type Request struct {
	Op string `json:"op"` // create, start, list, subscribe, shutdown, upgrade, ping

	ID       string     `json:"id,omitempty"`
	Bundle   string     `json:"bundle,omitempty"`
	Log      LogOptions `json:"log,omitzero"`
	ExitFile string     `json:"exitFile,omitempty"` // where to record the exit
	Stdin    bool       `json:"stdin,omitempty"`    // keep a pipe to the container's stdin
	Terminal bool       `json:"terminal,omitempty"` // give the container a pty

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
}

// Container is a container the monitor supervises.
type Container struct {
	ID  string `json:"id"`
	Pid int    `json:"pid"`
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
