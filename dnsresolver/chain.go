package dnsresolver

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// The handler chain of one listener, outermost first:
//
//	admit       drops answers, refuses sources outside the network, rejects
//	            what is not one plain query
//	withView    loads the network's records and finds the asking container
//	records     answers names the network owns (and the asker's other
//	            networks): links, names, search domains, rotation, PTR,
//	            empty AAAA
//	forward     sends everything else to the upstream resolvers
//
// Each stage is a dns.Handler wrapping the next; the *request made by admit
// carries what the stages learn down the chain. The UDP fast path (fast.go)
// answers the commonest queries without running the chain, by the same
// network.resolve.

// ednsSize is the UDP payload size berth advertises and honours: the DNS flag
// day 2020 value, which avoids IP fragmentation on any common path.
const ednsSize = 1232

// request is one query on its way down the chain.
type request struct {
	dns.ResponseWriter
	src     netip.Addr
	udpSize int // the largest reply the client takes over UDP; 0 over TCP
	view    *view
	asker   *asker // nil when the source is no known container
}

// WriteMsg sends m, truncated (TC set) to what a UDP client takes, so that the
// client retries over TCP for the rest.
func (r *request) WriteMsg(m *dns.Msg) error {
	m.Compress = true
	if r.udpSize > 0 && m.Len() > r.udpSize {
		m.Truncate(r.udpSize)
	}
	return r.ResponseWriter.WriteMsg(m)
}

// admit is the first stage: it decides whether the query is served at all.
func (n *network) admit(next dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Response {
			return // never answer an answer: two resolvers would ping-pong
		}
		req := &request{ResponseWriter: w}
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			req.src = a.AddrPort().Addr().Unmap()
			req.udpSize = clientUDPSize(r)
		case *net.TCPAddr:
			req.src = a.AddrPort().Addr().Unmap()
		}
		switch {
		case !n.allowed(req.src):
			// Not an open resolver: only the network's own containers (and the
			// host through the gateway address) may ask. The reply is no larger
			// than the query, so it amplifies nothing.
			fail(req, r, dns.RcodeRefused)
		case r.Opcode != dns.OpcodeQuery:
			fail(req, r, dns.RcodeNotImplemented)
		case len(r.Question) != 1:
			fail(req, r, dns.RcodeFormatError)
		case r.IsEdns0() != nil && r.IsEdns0().Version() != 0:
			fail(req, r, dns.RcodeBadVers)
		case r.Question[0].Qclass != dns.ClassINET:
			fail(req, r, dns.RcodeRefused)
		default:
			next.ServeDNS(req, r)
		}
	})
}

// allowed reports whether src may use the listener.
func (n *network) allowed(src netip.Addr) bool {
	return n.spec.Subnet.Contains(src) || (n.loopback && src.IsLoopback())
}

// clientUDPSize is the largest UDP reply the client of r takes: 512 bytes
// without EDNS, its advertised size with it, at most ednsSize.
func clientUDPSize(r *dns.Msg) int {
	size := dns.MinMsgSize
	if o := r.IsEdns0(); o != nil && int(o.UDPSize()) > size {
		size = min(int(o.UDPSize()), ednsSize)
	}
	return size
}

// withView loads the records the query is answered from, once, so every later
// stage sees the same version, and finds the container that asks.
func (n *network) withView(next dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		req := w.(*request)
		req.view = n.view.Load()
		req.asker = req.view.askers[req.src]
		next.ServeDNS(req, r)
	})
}

// records answers the names the network owns and passes the rest on.
func (n *network) records(next dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		req := w.(*request)
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		if q.Qtype == dns.TypePTR {
			if target, ok := n.resolvePTR(req.view, req.asker, name); ok {
				m := n.reply(r)
				m.Answer = append(m.Answer, &dns.PTR{Hdr: n.header(q.Name, dns.TypePTR), Ptr: target})
				_ = req.WriteMsg(m)
				return
			}
			if ip, ok := reverseAddr(name); ok && n.spec.Subnet.Contains(ip) {
				// The network's own reverse zone: unknown addresses are not
				// the upstream's business.
				fail(req, r, dns.RcodeNameError)
				return
			}
			next.ServeDNS(req, r)
			return
		}
		found, owned := n.resolve(req.view, req.asker, []byte(name))
		if found == nil {
			if owned {
				fail(req, r, dns.RcodeNameError)
				return
			}
			next.ServeDNS(req, r)
			return
		}
		m := n.reply(r)
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = n.appendAddrs(m.Answer, q.Name, found, found.v4)
		case dns.TypeAAAA:
			m.Answer = n.appendAddrs(m.Answer, q.Name, found, found.v6)
		case dns.TypeANY:
			m.Answer = n.appendAddrs(m.Answer, q.Name, found, found.v4)
			m.Answer = n.appendAddrs(m.Answer, q.Name, found, found.v6)
		}
		// Any other type of a name that exists, AAAA of an IPv4-only
		// container included, is NOERROR with no answer: NXDOMAIN would tell
		// the client the name does not exist at all, and glibc would give up
		// on its A answer too.
		_ = req.WriteMsg(m)
	})
}

// appendAddrs appends A or AAAA records for list, rotated: each reply starts
// one address further than the last, and the shared list is never reordered.
func (n *network) appendAddrs(rrs []dns.RR, owner string, a *addrs, list []netip.Addr) []dns.RR {
	start := a.start(len(list))
	for i := range list {
		ip := list[(start+i)%len(list)]
		if ip.Is4() {
			b := ip.As4()
			rrs = append(rrs, &dns.A{Hdr: n.header(owner, dns.TypeA), A: net.IP(b[:])})
		} else {
			b := ip.As16()
			rrs = append(rrs, &dns.AAAA{Hdr: n.header(owner, dns.TypeAAAA), AAAA: net.IP(b[:])})
		}
	}
	return rrs
}

// reply starts berth's own answer to r.
func (n *network) reply(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if r.IsEdns0() != nil {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

func (n *network) header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: n.srv.ttl}
}

// fail answers r with rcode and nothing else.
func fail(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	if r.IsEdns0() != nil || rcode > 0xF {
		m.SetEdns0(ednsSize, false)
	}
	_ = w.WriteMsg(m)
}

// reverseAddr parses a reverse-lookup name ("4.3.2.1.in-addr.arpa.").
func reverseAddr(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, ok := decimalByte(l)
			if !ok {
				return netip.Addr{}, false
			}
			b[3-i] = v
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			v := strings.IndexByte("0123456789abcdef", l[0])
			if v < 0 {
				return netip.Addr{}, false
			}
			pos := 31 - i
			b[pos/2] |= byte(v) << (4 * (1 - pos%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

func decimalByte(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return byte(v), v <= 255
}
