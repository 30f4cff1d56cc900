package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
)

// execDrainTimeout bounds how long an ended exec waits for its output to
// close: a background process it started may hold the pipes or the pty.
const execDrainTimeout = 2 * time.Second

// execProcessSpec is the container's process turned into cfg's: the
// container's environment plus cfg's, its user and directory unless cfg
// names others.
func (m *Manager) execProcessSpec(c *Container, cfg ExecConfig) (*specs.Process, error) {
	spec, err := runtime.LoadSpec(m.bundleDir(c.ID))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	p := *spec.Process
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	if cfg.Tty && cfg.ConsoleSize[0] > 0 && cfg.ConsoleSize[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: cfg.ConsoleSize[0], Width: cfg.ConsoleSize[1]}
	}
	p.Env = mergeEnv(spec.Process.Env, cfg.Env)
	if cfg.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		if p.User, err = resolveUser(m.rootfsDir(c.ID), cfg.User); err != nil {
			return nil, err
		}
	}
	if cfg.Privileged {
		all := runtime.AllCapabilities()[:lastCap()+1]
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

// runExec starts x's process in c and copies its streams until it ended.
func (m *Manager) runExec(ctx context.Context, x *execProcess, c *Container, cfg ExecConfig, eio ExecIO) (int, error) {
	proc, err := m.execProcessSpec(c, cfg)
	if err != nil {
		return 0, err
	}
	var rio runtime.IO
	var ours []*os.File   // our ends of the pipes: read output, write input
	var theirs []*os.File // the process's ends, closed once it has them
	closeAll := func(files []*os.File) {
		for _, f := range files {
			f.Close()
		}
	}
	var outR, errR, inW *os.File
	if !cfg.Tty {
		var outW, errW, inR *os.File
		if outR, outW, err = os.Pipe(); err == nil {
			ours, theirs = append(ours, outR), append(theirs, outW)
			if errR, errW, err = os.Pipe(); err == nil {
				ours, theirs = append(ours, errR), append(theirs, errW)
			}
		}
		if err == nil && cfg.AttachStdin && eio.Stdin != nil {
			if inR, inW, err = os.Pipe(); err == nil {
				ours, theirs = append(ours, inW), append(theirs, inR)
			}
		}
		if err != nil {
			closeAll(ours)
			closeAll(theirs)
			return 0, fmt.Errorf("exec in %s: %w", c.Name, err)
		}
		rio = runtime.IO{Stdin: inR, Stdout: outW, Stderr: errW}
	}
	p, err := m.rt.Exec(ctx, c.ID, proc, rio)
	closeAll(theirs)
	if err != nil {
		closeAll(ours)
		return 0, fmt.Errorf("exec in %s: %w", c.Name, classifyExecError(err))
	}
	// pidfd-backed: Wait cannot meet a reused pid.
	process, err := os.FindProcess(p.Pid)
	if err != nil {
		closeAll(ours)
		if p.Console != nil {
			p.Console.Close()
		}
		return 0, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	x.mu.Lock()
	x.state.Running, x.state.Pid, x.console = true, p.Pid, p.Console
	x.mu.Unlock()
	if eio.Started != nil {
		eio.Started()
	}

	var copies sync.WaitGroup
	copyOut := func(w io.Writer, r *os.File) {
		copies.Add(1)
		go func() {
			defer copies.Done()
			if w == nil {
				w = io.Discard
			}
			// A pty's read fails with EIO once the process's side closed: its end.
			_, _ = io.Copy(w, r)
		}()
	}
	if p.Console != nil {
		ours = append(ours, p.Console)
		copyOut(eio.Stdout, p.Console)
		if cfg.AttachStdin && eio.Stdin != nil {
			go func() { _, _ = io.Copy(p.Console, eio.Stdin) }()
		}
	} else {
		copyOut(eio.Stdout, outR)
		copyOut(eio.Stderr, errR)
		if inW != nil {
			go func() {
				_, _ = io.Copy(inW, eio.Stdin)
				inW.Close() // the process reads EOF when the client's input ends
			}()
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = process.Signal(syscall.SIGKILL) })
	ps, werr := process.Wait()
	stop()
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(execDrainTimeout):
	}
	closeAll(ours)
	<-drained
	code := -1
	if werr == nil {
		code = exitCode(ps)
	}
	x.mu.Lock()
	x.state.Running, x.state.ExitCode, x.console = false, &code, nil
	x.mu.Unlock()
	if werr != nil {
		return code, fmt.Errorf("exec in %s: wait: %w", c.Name, werr)
	}
	if ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, nil
}

// exitCode is a process's status as docker reports it: the code, or
// 128+signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// classifyExecError gives a command that cannot be run its error class,
// so the CLI can exit as docker does: 127 for not found, 126 for not
// executable.
func classifyExecError(err error) error {
	var se *runtime.SetupError
	if !errors.As(err, &se) || se.Step != "exec" {
		return err
	}
	switch msg := strings.ToLower(se.Err); {
	case strings.Contains(msg, "not found") || strings.Contains(msg, "no such file"):
		return errdefs.ErrNotFound.WithMessage(err.Error())
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
		return errdefs.ErrPermissionDenied.WithMessage(err.Error())
	}
	return err
}

// ResizeExec sets the window size of an exec's pty.
func (m *Manager) ResizeExec(id string, rows, cols uint) error {
	x, err := m.execByID(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	console := x.console
	x.mu.Unlock()
	if console == nil {
		return errdefs.ErrFailedPrecondition.WithMessage("exec " + id + " has no running terminal")
	}
	return setWinsize(console, rows, cols)
}

// setWinsize sets a pty's window size without making its descriptor
// blocking (Fd would, for every duplicate).
func setWinsize(f *os.File, rows, cols uint) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)})
	})
	return errors.Join(err, ierr)
}

// probe runs a healthcheck command in the container and returns its exit
// code and (truncated) output.
func (m *Manager) probe(ctx context.Context, id string, args []string) (int, string, error) {
	out := &limitedBuffer{max: healthOutputMax}
	code, err := m.Exec(ctx, id, ExecConfig{Cmd: slices.Clone(args)}, ExecIO{Stdout: out, Stderr: out})
	return code, out.String(), err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
