package dnsresolver

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"
)

// Server is the daemon's DNS server: one listener per network, each answering
// from that network's records.
//
// Lifecycle, as the daemon drives it:
//
//	s := dnsresolver.New(dnsresolver.Config{})        // daemon start
//	s.AddNetwork(dnsresolver.Network{Name: "proj_default", Gateway: gw, Subnet: sub})
//	                                                  // network created, or found at start
//	s.PutEndpoint("proj_default", ep)                 // address allocated, before the process starts
//	s.RemoveEndpoint("proj_default", "proj-web-1")    // container stopped or removed
//	s.SetEndpoints("proj_default", all)               // resync: the whole truth at once
//	s.RemoveNetwork("proj_default")                   // network removed
//	s.Close()                                         // daemon shutdown
//
// All methods are safe for concurrent use. Record changes are visible to the
// next query, with no restart of any listener.
type Server struct {
	ttl       uint32        // of berth's own answers, in seconds
	perTry    time.Duration // bounds one try of one upstream
	upstreams *upstreamSource
	conns     connPool // sockets to the upstreams, kept between queries
	sockets   int      // UDP sockets per listener

	mu       sync.Mutex // guards networks
	networks map[string]*network
	// own holds every listener address, so a query is never forwarded to
	// berth itself (a host resolv.conf naming a gateway would loop).
	own atomic.Pointer[map[netip.AddrPort]struct{}]

	memberMu   sync.Mutex                            // guards memberSets; taken after a network's mu
	memberSets map[*network][]string                 // containers with an endpoint on each network
	members    atomic.Pointer[map[string][]*network] // container -> its networks, when more than one (members.go)
}

// New returns a Server with no networks.
func New(cfg Config) *Server {
	s := &Server{
		ttl:       uint32(DefaultTTL.Seconds()),
		upstreams: newUpstreamSource(cfg),
		perTry:    DefaultUpstreamTimeout,
		sockets:   cfg.Sockets,
		networks:  make(map[string]*network),
	}
	s.conns.idle = make(map[netip.AddrPort][]pooledConn)
	if cfg.TTL > 0 {
		s.ttl = uint32(cfg.TTL.Seconds())
	}
	if cfg.UpstreamTimeout > 0 {
		s.perTry = cfg.UpstreamTimeout
	}
	if s.sockets <= 0 {
		s.sockets = runtime.GOMAXPROCS(0)
	}
	s.own.Store(&map[netip.AddrPort]struct{}{})
	s.memberSets = make(map[*network][]string)
	s.members.Store(&map[string][]*network{})
	return s
}

// network is one listener and the records it answers from.
type network struct {
	srv      *Server
	spec     Network
	addr     netip.AddrPort // where it listens
	loopback bool           // listening on loopback: loopback sources are local tests
	handler  dns.Handler    // the chain every query that leaves the fast path runs

	mu   sync.Mutex // guards eps; held by writers only, never by queries
	eps  []Endpoint
	view atomic.Pointer[view]

	ctx    context.Context // cancelled on removal: ends forwarding in flight
	cancel context.CancelFunc
	slots  chan struct{} // bounds the queries being answered off the fast path
	wg     sync.WaitGroup
	stop   func() // closes the sockets
}

// maxSlowQueries bounds, per listener, the queries answered in their own
// goroutine (forwarded ones mostly); past it a UDP query is dropped and the
// client retries, instead of berth growing without bound under a flood.
const maxSlowQueries = 512

// AddNetwork starts the listener of a network. It fails if a network of that
// name exists or the address cannot be bound.
func (s *Server) AddNetwork(spec Network) error {
	if err := checkName("network name", spec.Name); err != nil {
		return err
	}
	if !spec.Gateway.IsValid() || !spec.Subnet.IsValid() {
		return fmt.Errorf("network %s: gateway %s and subnet %s must both be valid: %w",
			spec.Name, spec.Gateway, spec.Subnet, errdefs.ErrInvalidArgument)
	}
	if spec.Port == 0 {
		spec.Port = DefaultPort
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.networks[spec.Name]; ok {
		return fmt.Errorf("dns listener for network %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	n := s.newNetwork(spec)
	if err := n.listen(s.sockets); err != nil {
		n.cancel()
		return fmt.Errorf("dns listener for network %s on %s: %w", spec.Name, n.addr, err)
	}
	s.networks[spec.Name] = n
	s.updateOwn()
	return nil
}

// RemoveNetwork stops the listener of a network and forgets its records. It
// returns once no goroutine of the listener is left.
func (s *Server) RemoveNetwork(name string) error {
	s.mu.Lock()
	n, ok := s.networks[name]
	if ok {
		delete(s.networks, name)
		s.updateOwn()
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("dns listener for network %s: %w", name, errdefs.ErrNotFound)
	}
	n.close()
	return nil
}

// Close stops every listener.
func (s *Server) Close() error {
	s.mu.Lock()
	nets := s.networks
	s.networks = make(map[string]*network)
	s.updateOwn()
	s.mu.Unlock()
	for _, n := range nets {
		n.close()
	}
	s.conns.close()
	return nil
}

// Addr returns where the listener of a network listens.
func (s *Server) Addr(network string) (netip.AddrPort, bool) {
	n, err := s.network(network)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return n.addr, true
}

// SetEndpoints replaces every record of a network with those of eps: what a
// resync after observing the engine calls.
func (s *Server) SetEndpoints(network string, eps []Endpoint) error {
	n, err := s.network(network)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(eps))
	owned := make([]Endpoint, 0, len(eps))
	for _, ep := range eps {
		if err := ep.validate(); err != nil {
			return fmt.Errorf("network %s: %w", network, err)
		}
		if seen[ep.Container] {
			return fmt.Errorf("network %s: two endpoints for container %s: %w", network, ep.Container, errdefs.ErrInvalidArgument)
		}
		seen[ep.Container] = true
		owned = append(owned, ep.clone())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.publish(owned)
	return nil
}

// PutEndpoint adds a container's endpoint to a network, or replaces the one
// with the same container name (a recreated container).
func (s *Server) PutEndpoint(network string, ep Endpoint) error {
	n, err := s.network(network)
	if err != nil {
		return err
	}
	if err := ep.validate(); err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	next := slices.Clone(n.eps)
	i := slices.IndexFunc(next, func(e Endpoint) bool { return e.Container == ep.Container })
	if i >= 0 {
		next[i] = ep.clone()
	} else {
		next = append(next, ep.clone())
	}
	n.publish(next)
	return nil
}

// RemoveEndpoint removes a container's endpoint from a network. Removing one
// that is not there is not an error: a stop and a resync may both remove it.
func (s *Server) RemoveEndpoint(network, container string) error {
	n, err := s.network(network)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	i := slices.IndexFunc(n.eps, func(e Endpoint) bool { return e.Container == container })
	if i < 0 {
		return nil
	}
	n.publish(slices.Delete(slices.Clone(n.eps), i, i+1))
	return nil
}

// Endpoints returns a copy of the endpoints a network answers from.
func (s *Server) Endpoints(network string) ([]Endpoint, error) {
	n, err := s.network(network)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Endpoint, len(n.eps))
	for i := range n.eps {
		out[i] = n.eps[i].clone()
	}
	return out, nil
}

func (s *Server) network(name string) (*network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.networks[name]
	if !ok {
		return nil, fmt.Errorf("dns listener for network %s: %w", name, errdefs.ErrNotFound)
	}
	return n, nil
}

// updateOwn republishes the set of listener addresses; s.mu is held.
func (s *Server) updateOwn() {
	own := make(map[netip.AddrPort]struct{}, len(s.networks))
	for _, n := range s.networks {
		own[n.addr] = struct{}{}
	}
	s.own.Store(&own)
}

// isOwn reports whether addr is one of berth's listeners.
func (s *Server) isOwn(addr netip.AddrPort) bool {
	_, ok := (*s.own.Load())[addr]
	return ok
}

// publish makes eps the network's records; n.mu is held. eps is never
// modified afterwards: the next change copies it.
func (n *network) publish(eps []Endpoint) {
	n.eps = eps
	n.view.Store(buildView(n.spec.Name, eps))
	containers := make([]string, len(eps))
	for i := range eps {
		containers[i] = eps[i].Container
	}
	n.srv.setMembers(n, containers)
}

// newNetwork makes the listener's state, with no records and no sockets yet.
func (s *Server) newNetwork(spec Network) *network {
	n := &network{
		srv:      s,
		spec:     spec,
		addr:     netip.AddrPortFrom(spec.Gateway.Unmap(), spec.Port),
		loopback: spec.Gateway.IsLoopback(),
		slots:    make(chan struct{}, maxSlowQueries),
		stop:     func() {},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.handler = n.admit(n.withView(n.records(n.forward())))
	n.view.Store(buildView(spec.Name, nil))
	return n
}

// close stops the listener and waits for its goroutines.
func (n *network) close() {
	n.mu.Lock()
	n.srv.setMembers(n, nil)
	n.mu.Unlock()
	n.cancel()
	n.stop()
	n.wg.Wait()
}

// clone returns a copy of ep sharing no slice with it.
func (ep Endpoint) clone() Endpoint {
	ep.Aliases = slices.Clone(ep.Aliases)
	ep.Links = slices.Clone(ep.Links)
	ep.Upstreams = slices.Clone(ep.Upstreams)
	ep.Search = slices.Clone(ep.Search)
	return ep
}
