package dnsresolver

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// forward is the last stage: the query is for a name berth does not own, so
// it goes to the upstream resolvers, tried in order, each try bounded by the
// server's per-try timeout:
//   - a network error or timeout moves on to the next upstream;
//   - SERVFAIL or REFUSED moves on too, and is passed back only if no
//     upstream does better;
//   - a truncated UDP answer is asked again over TCP from the same upstream,
//     and the full answer is then truncated to what the client takes (its
//     request.WriteMsg), so a UDP client retries over TCP and gets it all.
func (n *network) forward() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		req := w.(*request)
		var ups []netip.AddrPort
		if req.asker != nil && len(req.asker.upstreams) > 0 {
			ups = req.asker.upstreams
		} else {
			ups = n.srv.upstreams.get()
		}
		resp := n.srv.exchange(n.ctx, r, ups)
		if resp == nil {
			fail(req, r, dns.RcodeServerFailure)
			return
		}
		_ = req.WriteMsg(resp)
	})
}

// exchange asks the upstreams in turn and returns the answer to give r's
// client, or nil when none answered.
func (s *Server) exchange(ctx context.Context, r *dns.Msg, ups []netip.AddrPort) *dns.Msg {
	q := r.Copy()
	// A fresh ID upstream: the client's is chosen by the client, so a
	// container must not be able to predict the ID of berth's query.
	q.Id = dns.Id()
	clientEDNS := r.IsEdns0() != nil
	if !clientEDNS {
		// Ask upstream with EDNS even for a client without: answers up to
		// ednsSize come in one UDP exchange instead of a TCP retry.
		q.SetEdns0(ednsSize, false)
	}
	var last *dns.Msg
	for _, u := range ups {
		if ctx.Err() != nil {
			break
		}
		if s.isOwn(u) {
			continue
		}
		resp := s.try(ctx, q, u)
		if resp == nil {
			continue
		}
		last = resp
		if resp.Rcode != dns.RcodeServerFailure && resp.Rcode != dns.RcodeRefused {
			break
		}
	}
	if last == nil {
		return nil
	}
	last.Id = r.Id
	if !clientEDNS {
		extra := last.Extra[:0]
		for _, rr := range last.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		last.Extra = extra
	}
	return last
}

// try asks one upstream, over UDP and then, if the answer is truncated, TCP.
func (s *Server) try(ctx context.Context, q *dns.Msg, u netip.AddrPort) *dns.Msg {
	c := &dns.Client{Net: "udp", Timeout: s.perTry, UDPSize: ednsSize}
	pc, err := s.conns.get(c, u)
	if err != nil {
		return nil
	}
	resp, _, err := c.ExchangeWithConnContext(ctx, q, pc.conn)
	s.conns.put(u, pc, err == nil)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, u.String())
	}
	if err != nil || !sameQuestion(q, resp) {
		return nil
	}
	return resp
}

// connPool keeps connected UDP sockets to the upstreams between queries, so
// a forwarded query costs a write and a read rather than a socket, a connect
// and a close. A socket serves one query at a time; answers to an earlier
// query that timed out are skipped by their ID. Sockets are retired after
// maxConnAge so the source port keeps changing (a spoofer must guess it).
type connPool struct {
	mu   sync.Mutex // guards idle
	idle map[netip.AddrPort][]pooledConn
}

type pooledConn struct {
	conn *dns.Conn
	born time.Time
}

const (
	maxIdlePerUpstream = 128
	maxConnAge         = 30 * time.Second
)

func (p *connPool) get(c *dns.Client, u netip.AddrPort) (pooledConn, error) {
	p.mu.Lock()
	for list := p.idle[u]; len(list) > 0; list = p.idle[u] {
		pc := list[len(list)-1]
		p.idle[u] = list[:len(list)-1]
		if time.Since(pc.born) < maxConnAge {
			p.mu.Unlock()
			return pc, nil
		}
		_ = pc.conn.Close()
	}
	p.mu.Unlock()
	conn, err := c.Dial(u.String())
	if err != nil {
		return pooledConn{}, err
	}
	return pooledConn{conn: conn, born: time.Now()}, nil
}

// put gives a socket back after a query; one that failed is closed, since a
// late answer or an error state may linger on it.
func (p *connPool) put(u netip.AddrPort, pc pooledConn, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok || p.idle == nil || len(p.idle[u]) >= maxIdlePerUpstream {
		_ = pc.conn.Close()
		return
	}
	p.idle[u] = append(p.idle[u], pc)
}

// close closes every idle socket; sockets in use are closed when put back.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.idle {
		for _, pc := range list {
			_ = pc.conn.Close()
		}
	}
	p.idle = nil
}

// sameQuestion reports whether resp answers q's question: an answer to
// another question is a spoof or a broken upstream, never passed on.
func sameQuestion(q, resp *dns.Msg) bool {
	if len(resp.Question) != len(q.Question) {
		return false
	}
	for i, a := range q.Question {
		b := resp.Question[i]
		if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
			return false
		}
	}
	return true
}

// upstreamSource gives the server's upstream resolvers: fixed ones from the
// Config, or the nameservers of the host's resolv.conf, re-read when the file
// changes (a laptop changing networks, systemd-resolved rewriting it).
type upstreamSource struct {
	fixed []netip.AddrPort
	path  string

	mu      sync.Mutex // guards the fields below
	checked time.Time  // last stat of path
	stamp   fileStamp  // of the version parsed into current
	current []netip.AddrPort
}

type fileStamp struct {
	mtime time.Time
	size  int64
	ok    bool
}

// recheck is how long the parsed resolv.conf is trusted before a new stat.
const recheck = time.Second

func newUpstreamSource(cfg Config) *upstreamSource {
	u := &upstreamSource{path: cfg.ResolvConf}
	if cfg.Upstreams != nil {
		u.fixed = append([]netip.AddrPort{}, cfg.Upstreams...)
	}
	if u.path == "" {
		u.path = DefaultResolvConf
	}
	return u
}

func (u *upstreamSource) get() []netip.AddrPort {
	if u.fixed != nil {
		return u.fixed
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if now.Sub(u.checked) < recheck && !u.checked.IsZero() {
		return u.current
	}
	u.checked = now
	var stamp fileStamp
	if fi, err := os.Stat(u.path); err == nil {
		stamp = fileStamp{mtime: fi.ModTime(), size: fi.Size(), ok: true}
	}
	if stamp == u.stamp && u.current != nil {
		return u.current
	}
	u.stamp = stamp
	data, err := os.ReadFile(u.path)
	if err != nil {
		u.current = nil
		return nil
	}
	u.current = ParseResolvConf(data).Upstreams()
	return u.current
}
