package monitor

import (
	"bytes"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/internal/failpoint"
)

// readsPerWakeup bounds the reads of one pipe per epoll wakeup, so one
// container flooding its output cannot starve the others.
const readsPerWakeup = 8

// parkRequest stops the loop between two events (for an upgrade, which
// must see the partial lines the loop owns): the loop closes parked and
// waits for resume.
type parkRequest struct {
	parked, resume chan struct{}
}

// park stops the loop and returns the function that lets it go on.
func (s *Server) park() (resume func()) {
	p := &parkRequest{parked: make(chan struct{}), resume: make(chan struct{})}
	s.mu.Lock()
	s.parking = p
	s.mu.Unlock()
	var one [8]byte
	one[0] = 1 // eventfd counters are host-endian; any non-zero value wakes
	_, _ = unix.Write(s.wakefd, one[:])
	<-p.parked
	return func() { close(p.resume) }
}

// loop is the monitor's one event loop: output to logs and attachers,
// pidfds to exits.
func (s *Server) loop() {
	buf := s.staging.buf
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(s.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			s.log.Error("monitor: epoll wait", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			if int(events[i].Fd) == s.wakefd {
				var b [8]byte
				_, _ = unix.Read(s.wakefd, b[:])
				s.mu.Lock()
				p := s.parking
				s.parking = nil
				s.mu.Unlock()
				if p != nil {
					close(p.parked)
					<-p.resume
				}
				continue
			}
			s.mu.Lock()
			w := s.watches[events[i].Fd]
			s.mu.Unlock()
			if w == nil || w.closed {
				continue
			}
			if w.stream == "" {
				s.reap(w)
			} else {
				s.drain(w, buf)
			}
		}
	}
}

// drain copies what the pipe holds to the log and to attachers, whole
// lines at a time to the log.
func (s *Server) drain(w *watch, buf []byte) {
	for range readsPerWakeup {
		s.staging.reading(w.c.id, w.logStream())
		n, err := unix.Read(w.fd, buf)
		if n > 0 {
			_ = failpoint.Inject("monitor/after-read")
			s.staging.hold(n, w.c.log.Size())
			_ = failpoint.Inject("monitor/after-hold")
			s.logOutput(w, buf[:n])
			_ = failpoint.Inject("monitor/after-log")
			s.staging.release()
			if !s.fanout(w, buf[:n]) {
				return // paused: an attacher lags
			}
			continue
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		// EOF (n == 0), a broken pipe, or EIO from a pty whose last slave
		// closed: this stream is done.
		if len(w.partial) > 0 {
			s.write(w, w.partial)
			w.partial = nil
		}
		s.remove(w)
		s.mu.Lock()
		c := w.c
		c.open--
		if c.open == 0 {
			for a := range c.attachers {
				a.end()
			}
		}
		s.release(c)
		done := c.open == 0 && c.exit != nil && !c.recorded
		s.mu.Unlock()
		if done {
			s.record(c)
		}
		return
	}
}

// logOutput writes the complete lines of data (after any partial line kept
// from before) and keeps the rest for the next read.
func (s *Server) logOutput(w *watch, data []byte) {
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		w.partial = append(w.partial, data...)
		if len(w.partial) >= logs.MaxLineSize {
			s.write(w, w.partial)
			w.partial = w.partial[:0]
		}
		return
	}
	if len(w.partial) > 0 {
		w.partial = append(w.partial, data[:last+1]...)
		s.write(w, w.partial)
		w.partial = w.partial[:0]
	} else {
		s.write(w, data[:last+1])
	}
	if rest := data[last+1:]; len(rest) > 0 {
		w.partial = append(w.partial, rest...)
	}
	if cap(w.partial) > 4*logs.MaxLineSize && len(w.partial) == 0 {
		w.partial = nil // give a burst's buffer back
	}
}

func (s *Server) write(w *watch, data []byte) {
	if err := w.c.log.Write(w.logStream(), time.Now(), data); err != nil {
		s.log.Error("monitor: write log", "container", w.c.id, "err", err)
	}
}

// reap collects the exit status of a container's first process once its
// pidfd says it ended.
func (s *Server) reap(w *watch) {
	c := w.c
	exit := Exit{ID: c.id, Pid: c.pid, ExitedAt: time.Now().UTC()}
	if !c.child {
		// Adopted: its status went to whoever reaped it.
		exit.Status, exit.Lost = 255, true
	} else {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(c.pid, &ws, unix.WNOHANG, nil)
		switch {
		case err == nil && wpid == 0:
			return // not yet: a spurious wakeup
		case err != nil:
			// Not our child (any more): the status went to another reaper.
			exit.Status, exit.Lost = 255, true
		case ws.Signaled():
			exit.Signal = int(ws.Signal())
			exit.Status = 128 + exit.Signal
		default:
			exit.Status = ws.ExitStatus()
		}
	}
	s.remove(w)
	s.mu.Lock()
	c.pidfd = -1
	c.exit = &exit
	drained := c.open == 0
	s.mu.Unlock()
	if drained {
		s.record(c)
		return
	}
	time.AfterFunc(drainTimeout, func() { s.record(c) })
}
