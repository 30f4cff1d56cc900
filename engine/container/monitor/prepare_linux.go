package monitor

import (
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
)

// A prepared container's setup stage waits for its create this long, and
// this many wait at most: each is a process (1.3 MB of its own), spent on
// the bet that a created container is started soon (compose creates and
// starts at once).
const (
	preparedTTL = 30 * time.Second
	maxPrepared = 16
)

// spareWait is how long a prepare waits for the spare stage being started
// (a clone and a cgroup: milliseconds) rather than start another. One
// prepare waits for it; others that come meanwhile (compose creates
// services in parallel) start their own.
const spareWait = 100 * time.Millisecond

// spareBurst: a prepare that comes this soon after the one before is in a
// burst of creates (compose's, or `up --scale`).
const spareBurst = 100 * time.Millisecond

// spareTTL is how long a spare stage waits for a prepare. Creates come in
// bursts: a spare is started once one is taken, for the next create, and
// ended after a quiet spell.
const spareTTL = 30 * time.Second

// prepared is a setup stage started by a prepare request, with the pipes
// it was given, until the container's create takes it.
type prepared struct {
	terminal, stdin bool
	ready           chan struct{} // closed once stage and pipes are set, or failed
	stage           PreparedStage
	pipes           *stdioPipes
	timer           *time.Timer
}

func (p *prepared) close() {
	if p.stage != nil {
		p.stage.Close()
		p.stage = nil
	}
	if p.pipes != nil {
		p.pipes.closeAll()
		p.pipes = nil
	}
}

// prepare starts the setup stage of container req.ID, so that its create,
// which must come from the same client after the answer, finds it started.
// It answers (reply) as soon as the stage is reserved: the clone and the
// stage's start-up go on after.
func (s *Server) prepare(req Request, reply func(error)) {
	if req.ID == "" || len(req.Namespaces) == 0 {
		reply(errors.New("prepare: id and namespaces are required"))
		return
	}
	p := &prepared{terminal: req.Terminal, stdin: req.Stdin, ready: make(chan struct{})}
	s.mu.Lock()
	var err error
	switch c, running := s.containers[req.ID]; {
	case running && !c.recorded:
		err = fmt.Errorf("prepare %s: already running as pid %d", req.ID, c.pid)
	case s.prepared[req.ID] != nil:
		err = fmt.Errorf("prepare %s: already prepared", req.ID)
	case len(s.prepared) >= maxPrepared:
		err = fmt.Errorf("prepare %s: %d stages already wait", req.ID, len(s.prepared))
	default:
		s.prepared[req.ID] = p
	}
	s.mu.Unlock()
	reply(err)
	if err != nil {
		return
	}
	defer close(p.ready)
	// In a burst of creates, the next create's spare starts now, while
	// this container is set up (after this one's stage, when it needs its
	// own): the next create would come before a spare started after this
	// start is through its start-up. Otherwise it starts once this
	// container has started (see create): started beside a container's
	// set-up, it slows it. (On cgroup v1 its move into its cgroup may wait
	// for an RCU grace period holding cgroup_mutex.)
	s.mu.Lock()
	burst := time.Since(s.lastPrepare) < spareBurst
	s.lastPrepare = time.Now()
	s.mu.Unlock()
	if burst {
		defer s.refillSpare()
	}
	if sp := s.claimSpare(req); sp != nil {
		p.stage, p.pipes = sp.stage, sp.pipes
		p.timer = time.AfterFunc(preparedTTL, func() {
			if s.takePreparedIf(req.ID, p) {
				p.close()
			}
		})
		return
	}
	pipes, err := newStdioPipes(req.Terminal, req.Stdin)
	if err == nil {
		p.pipes = pipes
		p.stage, err = s.rt.Prepare(req.ID, req.Namespaces, pipes.stdio)
	}
	if err != nil {
		s.log.Debug("monitor: prepare", "container", req.ID, "err", err)
		p.close()
		return
	}
	p.timer = time.AfterFunc(preparedTTL, func() {
		if s.takePreparedIf(req.ID, p) {
			p.close()
		}
	})
}

// claimSpare gives the spare stage to req's container, if there is one
// that fits (a spare has no terminal and no stdin). A spare that cannot
// be claimed (the spec shares the host's pid namespace, say) stays.
func (s *Server) claimSpare(req Request) *prepared {
	if req.Terminal || req.Stdin {
		return nil
	}
	s.mu.Lock()
	if s.spare == nil && s.refilling && !s.spareAwaited {
		s.spareAwaited = true
		refilled := s.refilled
		s.mu.Unlock()
		select {
		case <-refilled:
		case <-time.After(spareWait):
		}
		s.mu.Lock()
		s.spareAwaited = false
	}
	sp := s.spare
	s.spare = nil
	s.mu.Unlock()
	if sp == nil {
		return nil
	}
	sp.timer.Stop()
	if err := sp.stage.Claim(req.ID, req.Namespaces); err != nil {
		s.log.Debug("monitor: claim spare stage", "container", req.ID, "err", err)
		if errdefs.IsNotImplemented(err) {
			s.keepSpare(sp) // another container may fit it
		} else {
			sp.close()
		}
		return nil
	}
	return sp
}

// refillSpare starts a spare stage in the background, unless there is one
// or one is being started. It holds the ops lock's read side, so an
// upgrade waits for it (and discards what it made).
func (s *Server) refillSpare() {
	s.mu.Lock()
	if s.spare != nil || s.refilling || s.spareOff {
		s.mu.Unlock()
		return
	}
	s.refilling = true
	refilled := make(chan struct{})
	s.refilled = refilled
	s.refills.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.refills.Done()
		defer close(refilled)
		s.ops.RLock()
		defer s.ops.RUnlock()
		sp := &prepared{ready: make(chan struct{})}
		close(sp.ready)
		var err error
		if sp.pipes, err = newStdioPipes(false, false); err == nil {
			sp.stage, err = s.rt.PrepareSpare(sp.pipes.stdio)
		}
		if err != nil {
			s.log.Debug("monitor: spare stage", "err", err)
			sp.close()
		} else {
			s.keepSpare(sp)
		}
		s.mu.Lock()
		s.refilling = false
		s.mu.Unlock()
	}()
}

// keepSpare makes sp the spare stage, for spareTTL, or ends it if there
// is one already or the monitor shuts down.
func (s *Server) keepSpare(sp *prepared) {
	s.mu.Lock()
	if s.spare != nil || s.spareOff {
		s.mu.Unlock()
		sp.close()
		return
	}
	s.spare = sp
	sp.timer = time.AfterFunc(spareTTL, func() {
		s.mu.Lock()
		mine := s.spare == sp
		if mine {
			s.spare = nil
		}
		s.mu.Unlock()
		if mine {
			sp.close()
		}
	})
	s.mu.Unlock()
}

// takePrepared removes and returns container id's prepared stage, once it
// is started; nil if there is none, or it failed.
func (s *Server) takePrepared(id string) *prepared {
	s.mu.Lock()
	p := s.prepared[id]
	delete(s.prepared, id)
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	<-p.ready
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.stage == nil {
		return nil
	}
	return p
}

// takePreparedIf removes id's prepared stage if it is still p.
func (s *Server) takePreparedIf(id string, p *prepared) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prepared[id] != p {
		return false
	}
	delete(s.prepared, id)
	return true
}

// discardPrepared ends every prepared stage (or id's alone), before an
// upgrade, a shutdown, or the container's removal.
func (s *Server) discardPrepared(id string) {
	s.mu.Lock()
	var ps []*prepared
	for k, p := range s.prepared {
		if id == "" || k == id {
			ps = append(ps, p)
			delete(s.prepared, k)
		}
	}
	if id == "" && s.spare != nil {
		ps = append(ps, s.spare)
		s.spare = nil
	}
	s.mu.Unlock()
	for _, p := range ps {
		<-p.ready
		if p.timer != nil {
			p.timer.Stop()
		}
		p.close()
	}
}
