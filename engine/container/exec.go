package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerd/errdefs"
)

// ExecConfig is a process to run in a running container (docker exec).
// Unset fields take the container's: its environment (Env adds to it),
// user, working directory.
type ExecConfig struct {
	Cmd         []string `json:"Cmd"`
	Env         []string `json:"Env,omitempty"`
	User        string   `json:"User,omitempty"`
	WorkingDir  string   `json:"WorkingDir,omitempty"`
	Tty         bool     `json:"Tty,omitempty"`
	AttachStdin bool     `json:"AttachStdin,omitempty"`
	// Privileged gives the process every capability, as exec --privileged.
	Privileged bool `json:"Privileged,omitempty"`
	// ConsoleSize is the pty's initial rows and columns.
	ConsoleSize [2]uint `json:"ConsoleSize,omitzero"`
}

// ExecState is an exec as `exec inspect` shows it.
type ExecState struct {
	ID          string     `json:"ID"`
	ContainerID string     `json:"ContainerID"`
	Config      ExecConfig `json:"ProcessConfig"`
	Running     bool       `json:"Running"`
	ExitCode    *int       `json:"ExitCode"` // nil until it ended
	Pid         int        `json:"Pid"`
}

// ExecIO are the streams an exec's process is connected to; nil ones are
// not. With a tty, everything the process writes goes to Stdout.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Started, when set, is called once the process runs.
	Started func()
}

// execProcess is an exec the manager knows: created, running or ended.
type execProcess struct {
	mu      sync.Mutex // guards state, started, console
	state   ExecState
	started bool
	console *os.File // the pty master while it runs
}

func (x *execProcess) snapshot() ExecState {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.state
	if st.ExitCode != nil {
		code := *st.ExitCode
		st.ExitCode = &code
	}
	return st
}

// CreateExec prepares cfg to run in the container ref and returns its id,
// for StartExec.
func (m *Manager) CreateExec(ref string, cfg ExecConfig) (string, error) {
	if len(cfg.Cmd) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("exec: no command given")
	}
	e, err := m.lookup(ref)
	if err != nil {
		return "", err
	}
	e.op.Lock()
	c := *e.c
	e.op.Unlock()
	if err := execable(&c); err != nil {
		return "", err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	m.mu.Lock()
	m.execs[id] = &execProcess{state: ExecState{ID: id, ContainerID: c.ID, Config: cfg}}
	m.mu.Unlock()
	return id, nil
}

func execable(c *Container) error {
	switch c.State.Status {
	case Running:
		return nil
	case Paused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before exec", c.Name))
	}
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.Name))
}

func (m *Manager) execByID(id string) (*execProcess, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.execs[id]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("no such exec: " + id)
	}
	return x, nil
}

// InspectExec returns an exec's state.
func (m *Manager) InspectExec(id string) (ExecState, error) {
	x, err := m.execByID(id)
	if err != nil {
		return ExecState{}, err
	}
	return x.snapshot(), nil
}

// StartExec runs the exec id with its streams connected to eio and returns
// its exit code once it ended and its output is drained. Cancelling ctx
// kills the process.
func (m *Manager) StartExec(ctx context.Context, id string, eio ExecIO) (int, error) {
	x, err := m.execByID(id)
	if err != nil {
		return 0, err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return 0, errdefs.ErrConflict.WithMessage("exec " + id + " has already started")
	}
	x.started = true
	cfg, containerID := x.state.Config, x.state.ContainerID
	x.mu.Unlock()
	e, err := m.lookup(containerID)
	if err != nil {
		return 0, err
	}
	e.op.Lock()
	c := *e.c
	e.op.Unlock()
	if err := execable(&c); err != nil {
		return 0, err
	}
	code, err := m.runExec(ctx, x, &c, cfg, eio)
	if err != nil {
		x.mu.Lock()
		if x.state.ExitCode == nil {
			// It never ran: the code docker's CLI exits with.
			code = 126
			if errdefs.IsNotFound(err) {
				code = 127
			}
			x.state.ExitCode = &code
		}
		x.mu.Unlock()
	}
	return code, err
}

// Exec runs cfg in the container ref, connected to eio, and returns its
// exit code: CreateExec and StartExec in one.
func (m *Manager) Exec(ctx context.Context, ref string, cfg ExecConfig, eio ExecIO) (int, error) {
	id, err := m.CreateExec(ref, cfg)
	if err != nil {
		return 0, err
	}
	defer func() {
		m.mu.Lock()
		delete(m.execs, id)
		m.mu.Unlock()
	}()
	return m.StartExec(ctx, id, eio)
}

// dropExecs forgets the ended execs of a container whose run ended.
func (m *Manager) dropExecs(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, x := range m.execs {
		x.mu.Lock()
		ended := x.state.ContainerID == containerID && !x.state.Running
		x.mu.Unlock()
		if ended {
			delete(m.execs, id)
		}
	}
}
