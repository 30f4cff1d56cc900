package monitor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
)

// create makes the container's pipes (or has the runtime make its pty),
// has the runtime create it, and starts watching its output and its first
// process. It returns the pid and the stdio descriptors for the daemon to
// duplicate.
func (s *Server) create(req Request) (int, []string, []int, error) {
	if req.ID == "" || req.Bundle == "" || req.Log.Path == "" || req.ExitFile == "" {
		return 0, nil, nil, errors.New("create: id, bundle, log path and exit file are required")
	}
	s.mu.Lock()
	if c, ok := s.containers[req.ID]; ok && !c.recorded {
		s.mu.Unlock()
		return 0, nil, nil, fmt.Errorf("create %s: already running as pid %d", req.ID, c.pid)
	}
	s.mu.Unlock()
	_ = os.Remove(req.ExitFile)

	lw, err := logs.OpenWriter(req.Log.Path, logs.Options{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles})
	if err != nil {
		return 0, nil, nil, fmt.Errorf("create %s: %w", req.ID, err)
	}
	var pipes *stdioPipes
	var pid int
	var console *os.File
	if prep := s.takePrepared(req.ID); prep != nil && prep.terminal == req.Terminal && prep.stdin == req.Stdin {
		pipes = prep.pipes
		pid, console, err = s.rt.CreatePrepared(context.Background(), req.ID, req.Bundle, prep.stage)
	} else {
		if prep != nil {
			prep.close()
		}
		if pipes, err = newStdioPipes(req.Terminal, req.Stdin); err != nil {
			lw.Close()
			return 0, nil, nil, fmt.Errorf("create %s: %w", req.ID, err)
		}
		pid, console, err = s.rt.Create(context.Background(), req.ID, req.Bundle, pipes.stdio)
	}
	if err == nil && req.Terminal && console == nil {
		err = errors.New("the runtime gave no pty")
	}
	if err != nil {
		pipes.closeAll()
		lw.Close()
		return 0, nil, nil, fmt.Errorf("create %s: %w", req.ID, err)
	}
	pipes.closeTheirs()
	outR, errR, stdinW := pipes.outR, pipes.errR, pipes.stdinW
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// Without a pidfd the exit would go unnoticed; refuse rather than lose it.
		pipes.closeAll()
		lw.Close()
		if console != nil {
			console.Close()
		}
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, nil, nil, fmt.Errorf("create %s: pidfd_open(%d): %w", req.ID, pid, err)
	}
	c := &container{id: req.ID, pid: pid, pidfd: pidfd, child: true, exitFile: req.ExitFile, logOpts: req.Log, log: lw, stdin: -1}
	type stream struct {
		f    *os.File
		name string
	}
	var streams []stream
	if req.Terminal {
		streams = []stream{{console, StreamPty}}
	} else {
		streams = []stream{{outR, StreamStdout}, {errR, StreamStderr}}
		if stdinW != nil {
			if c.stdin, err = detachFd(stdinW, false); err != nil {
				c.stdin = -1
			}
		}
	}
	for _, st := range streams {
		fd, err := detachFd(st.f, true)
		if err != nil {
			s.log.Error("monitor: detach fd", "container", req.ID, "err", err)
			continue
		}
		c.out = append(c.out, &watch{c: c, fd: fd, stream: st.name})
	}
	c.open = len(c.out)
	s.mu.Lock()
	s.containers[req.ID] = c
	names, fds := c.stdio()
	// The answer carries duplicates taken under the lock (a watch closing
	// at EOF must not close them under us); handle closes them once sent.
	dups := make([]int, 0, len(fds))
	for _, fd := range fds {
		if d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			dups = append(dups, d)
		}
	}
	s.mu.Unlock()
	for _, w := range c.out {
		s.add(w)
	}
	s.add(&watch{c: c, fd: pidfd})
	if req.Start {
		if err := s.rt.Start(context.Background(), req.ID, pid); err != nil {
			// Its exit is reaped and recorded as any other.
			_ = unix.Kill(pid, unix.SIGKILL)
			closeFds(dups)
			return 0, nil, nil, fmt.Errorf("start %s: %w", req.ID, err)
		}
	}
	// A spare stage for the next create, now that this one has started,
	// if none is there or coming (see prepare).
	s.refillSpare()
	if len(dups) != len(names) {
		closeFds(dups)
		return pid, nil, nil, nil
	}
	return pid, names, dups, nil
}

// stdioPipes are a container's stdio pipes: the container's ends (stdio),
// closed once it has them, and ours. A terminal container has none.
type stdioPipes struct {
	stdio              Stdio
	outR, errR, stdinW *os.File
}

func newStdioPipes(terminal, stdin bool) (*stdioPipes, error) {
	p := &stdioPipes{}
	if terminal {
		return p, nil
	}
	var err error
	if p.outR, p.stdio.Stdout, err = os.Pipe(); err == nil {
		if p.errR, p.stdio.Stderr, err = os.Pipe(); err == nil && stdin {
			p.stdio.Stdin, p.stdinW, err = os.Pipe()
		}
	}
	if err != nil {
		p.closeAll()
		return nil, err
	}
	return p, nil
}

func (p *stdioPipes) closeTheirs() {
	for _, f := range []*os.File{p.stdio.Stdin, p.stdio.Stdout, p.stdio.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

func (p *stdioPipes) closeAll() {
	p.closeTheirs()
	for _, f := range []*os.File{p.outR, p.errR, p.stdinW} {
		if f != nil {
			f.Close()
		}
	}
}

// adopt takes over a container whose monitor died: its first process is
// not our child (its exit status will be lost), but its stdio descriptors,
// which the daemon kept, are drained to the log again.
func (s *Server) adopt(req Request, fds []int) error {
	if req.ID == "" || req.Pid <= 0 || req.ExitFile == "" || req.Log.Path == "" || len(req.Streams) != len(fds) {
		closeFds(fds)
		return errors.New("adopt: id, pid, exit file, log path and one name per descriptor are required")
	}
	s.mu.Lock()
	if c, ok := s.containers[req.ID]; ok && !c.recorded {
		s.mu.Unlock()
		closeFds(fds)
		return fmt.Errorf("adopt %s: already supervised (pid %d)", req.ID, c.pid)
	}
	s.mu.Unlock()
	lw, err := logs.OpenWriter(req.Log.Path, logs.Options{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles})
	if err != nil {
		closeFds(fds)
		return fmt.Errorf("adopt %s: %w", req.ID, err)
	}
	c := &container{id: req.ID, pid: req.Pid, pidfd: -1, exitFile: req.ExitFile, logOpts: req.Log, log: lw, stdin: -1}
	// First what the killed monitor had read from its pipes and not logged.
	s.mu.Lock()
	left := s.left
	if left != nil && left.id == req.ID {
		s.left = nil
	}
	s.mu.Unlock()
	if left != nil && left.id == req.ID && !left.logged(req.Log.Path) {
		if err := lw.Write(left.stream, time.Now(), left.data); err != nil {
			s.log.Error("monitor: write what the last monitor had read", "container", req.ID, "err", err)
		}
	}
	for i, name := range req.Streams {
		fd := fds[i]
		switch name {
		case StreamStdout, StreamStderr, StreamPty:
			if err := unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
				continue
			}
			c.out = append(c.out, &watch{c: c, fd: fd, stream: name})
		case StreamStdin:
			c.stdin = fd
		default:
			unix.Close(fd)
		}
	}
	c.open = len(c.out)
	pidfd, err := unix.PidfdOpen(req.Pid, 0)
	if err != nil {
		// It ended while no monitor watched: when, and how, is unknown.
		c.exit = &Exit{ID: c.id, Pid: c.pid, Status: 255, Lost: true, ExitedAt: time.Now().UTC()}
	} else {
		c.pidfd = pidfd
	}
	s.mu.Lock()
	s.containers[req.ID] = c
	s.mu.Unlock()
	for _, w := range c.out {
		s.add(w)
	}
	if c.pidfd >= 0 {
		s.add(&watch{c: c, fd: c.pidfd})
	} else if c.open == 0 {
		s.record(c)
	}
	return nil
}

// detachFd takes the descriptor out of an *os.File (so the garbage
// collector never closes it behind the loop's back), close-on-exec, and
// non-blocking when asked.
func detachFd(f *os.File, nonblock bool) (int, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return -1, err
	}
	if nonblock {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}
