package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// operation is something a caller asks of a container.
type operation string

const (
	opStart  operation = "start"
	opPause  operation = "pause"
	opResume operation = "resume"
	opKill   operation = "kill"
	opExec   operation = "exec"
	opDelete operation = "delete"
)

// allowed is the state machine: the one place that says which operation a
// container in each status accepts.
func allowed(op operation, s Status) bool {
	switch op {
	case opStart:
		return s == Created
	case opPause:
		return s == Running
	case opResume:
		return s == Paused
	case opKill:
		return s == Created || s == Running || s == Paused
	case opExec:
		return s == Created || s == Running
	case opDelete:
		// A created container is deleted by killing its setup stage, as
		// runc does; a creating one only once its creator is gone (Delete
		// holds the container's lock, which Create keeps until it returns).
		return s == Stopped || s == Created || s == Creating
	}
	return false
}

// check returns a TransitionError unless op is allowed in status s.
func check(id string, op operation, s Status) error {
	if allowed(op, s) {
		return nil
	}
	return &TransitionError{ID: id, Operation: string(op), From: s}
}

// record is a container's state file, state.json in its directory.
type record struct {
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	// Ready is set once the setup stage reported that it waits for Start.
	Ready bool `json:"ready,omitempty"`
	Pid   int  `json:"pid,omitempty"`
	// PidStart is the start time of Pid (field 22 of /proc/PID/stat, in
	// clock ticks since boot): a process with the same pid and another
	// start time is not the container's, its pid was reused.
	PidStart uint64 `json:"pidStart,omitempty"`
	Cgroup   string `json:"cgroup"`
	// Spec is the container's configuration, for Exec (its namespaces,
	// seccomp profile and defaults) and for State's annotations.
	Spec *specs.Spec `json:"spec,omitempty"`
}

const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
)

// checkID accepts what a container id may be: it names a directory and a
// cgroup, so [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 128 characters. (No
// regexp: compiling one at package init would cost every container start.)
func checkID(id string) error {
	ok := len(id) > 0 && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '+' || c == '-')
	}
	if !ok {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container id %q: use letters, digits and _.+- (at most 128)", id))
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.cfg.StateDir, id) }

// save replaces the state file. No fsync: runtime state describes
// processes, which a reboot ends anyway, and the rename keeps it whole.
func save(dir string, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// load reads a container's state file.
func (r *Runtime) load(id string) (*record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if os.IsNotExist(err) {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s does not exist", id))
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	rec := &record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("container %s: state file: %w", id, err)
	}
	return rec, nil
}
