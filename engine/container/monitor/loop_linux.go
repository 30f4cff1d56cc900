package monitor

import (
	"bytes"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
)

// readsPerWakeup bounds the reads of one pipe per epoll wakeup, so one
// container flooding its output cannot starve the others.
const readsPerWakeup = 8

// loop is the monitor's one event loop: output pipes to logs, pidfds to exits.
func (s *Server) loop() {
	buf := make([]byte, 64<<10)
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
			s.mu.Lock()
			w := s.watches[events[i].Fd]
			s.mu.Unlock()
			if w == nil {
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

// drain copies what the pipe holds to the log, whole lines at a time.
func (s *Server) drain(w *watch, buf []byte) {
	for range readsPerWakeup {
		n, err := unix.Read(w.fd, buf)
		if n > 0 {
			s.logOutput(w, buf[:n])
			continue
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		// EOF (n == 0) or a broken pipe: this stream is done.
		if len(w.partial) > 0 {
			s.write(w, w.partial)
			w.partial = nil
		}
		s.remove(w)
		s.mu.Lock()
		w.c.open--
		s.release(w.c)
		done := w.c.open == 0 && w.c.exit != nil && !w.c.recorded
		s.mu.Unlock()
		if done {
			s.record(w.c)
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
	if err := w.c.log.Write(w.stream, time.Now(), data); err != nil {
		s.log.Error("monitor: write log", "container", w.c.id, "err", err)
	}
}

// reap collects the exit status of a container's first process once its
// pidfd says it ended.
func (s *Server) reap(w *watch) {
	c := w.c
	var ws unix.WaitStatus
	exit := Exit{ID: c.id, Pid: c.pid, ExitedAt: time.Now().UTC()}
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
	s.remove(w)
	s.mu.Lock()
	c.exit = &exit
	drained := c.open == 0
	s.mu.Unlock()
	if drained {
		s.record(c)
		return
	}
	time.AfterFunc(drainTimeout, func() { s.record(c) })
}
