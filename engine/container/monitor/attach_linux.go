package monitor

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
)

// Back-pressure of attach streams: past highWater bytes queued for one
// attacher the container's output is no longer read (its writes block on
// the full pipe, as they would on a slow terminal); below lowWater it is
// read again. Nothing is dropped, and other containers are not slowed.
const (
	attachHighWater = 1 << 20
	attachLowWater  = 256 << 10
)

// attacher is one attach connection: it receives the container's raw
// output as frames, written by its own goroutine from a queue.
type attacher struct {
	s    *Server
	c    *container
	conn *net.UnixConn
	wake chan struct{}

	// Guarded by s.mu.
	frames [][]byte
	queued int
	ending bool // the end frame is queued: close once written
	gone   bool // the client went away
}

// attach streams id's output to conn until the output ends or the client
// goes away. It reports whether it kept conn.
func (s *Server) attach(conn *net.UnixConn, id string) bool {
	s.mu.Lock()
	c := s.containers[id]
	if c == nil || (c.open == 0 && c.exit != nil) {
		s.mu.Unlock()
		_ = writeJSON(conn, Response{Error: fmt.Sprintf("attach %s: not running under this monitor", id)})
		return false
	}
	a := &attacher{s: s, c: c, conn: conn, wake: make(chan struct{}, 1)}
	// The answer is the first frame of the queue, so that output read from
	// now on follows it in order.
	a.push(jsonFrame(Response{}))
	if c.attachers == nil {
		c.attachers = map[*attacher]struct{}{}
	}
	c.attachers[a] = struct{}{}
	if c.open == 0 {
		a.end()
	}
	s.mu.Unlock()
	go a.readUntilGone()
	go a.run()
	return true
}

func jsonFrame(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte("{}")
	}
	return frame(FrameJSON, b)
}

func frame(kind byte, payload []byte) []byte {
	f := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(f, uint32(1+len(payload)))
	f[4] = kind
	copy(f[5:], payload)
	return f
}

// fanout queues data for the attachers of w's container and pauses the
// container when one of them lags. It reports whether the loop may go on
// reading w.
func (s *Server) fanout(w *watch, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := w.c
	if len(c.attachers) == 0 {
		return true
	}
	f := frame(w.kind(), data)
	lagging := false
	for a := range c.attachers {
		a.push(f)
		if a.queued > attachHighWater {
			lagging = true
		}
	}
	if lagging && !c.paused {
		c.paused = true
		for _, o := range c.out {
			s.unregister(o)
		}
	}
	return !c.paused
}

// resumeIfCaughtUp reads c's output again once no attacher lags. s.mu is held.
func (s *Server) resumeIfCaughtUp(c *container) {
	if !c.paused {
		return
	}
	for a := range c.attachers {
		if a.queued > attachLowWater {
			return
		}
	}
	c.paused = false
	for _, o := range c.out {
		s.register(o)
	}
}

// push queues a frame. s.mu is held.
func (a *attacher) push(f []byte) {
	a.frames = append(a.frames, f)
	a.queued += len(f)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// end queues the end frame. s.mu is held.
func (a *attacher) end() {
	if a.ending {
		return
	}
	a.push(frame(FrameEnd, nil))
	a.ending = true
}

// readUntilGone notices the client closing its side.
func (a *attacher) readUntilGone() {
	var b [512]byte
	for {
		if _, err := a.conn.Read(b[:]); err != nil {
			break
		}
	}
	a.s.mu.Lock()
	a.gone = true
	a.s.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run writes queued frames until the end frame is written or the client
// is gone, then detaches.
func (a *attacher) run() {
	s := a.s
	defer func() {
		s.mu.Lock()
		delete(a.c.attachers, a)
		a.frames, a.queued = nil, 0
		s.resumeIfCaughtUp(a.c)
		s.mu.Unlock()
		a.conn.Close()
	}()
	for {
		s.mu.Lock()
		frames, ending, gone := a.frames, a.ending, a.gone
		a.frames = nil
		s.mu.Unlock()
		if gone {
			return
		}
		if len(frames) == 0 {
			<-a.wake
			continue
		}
		bufs := net.Buffers(frames)
		n, err := bufs.WriteTo(a.conn)
		s.mu.Lock()
		a.queued -= int(n)
		s.resumeIfCaughtUp(a.c)
		s.mu.Unlock()
		if err != nil || ending {
			return
		}
	}
}
