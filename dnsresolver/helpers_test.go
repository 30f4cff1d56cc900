package dnsresolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// loopbackSeq hands out /24s of 127.0.0.0/8, one per test network, starting
// from a point that depends on the process so two test runs at once rarely
// meet. Listeners use port 53 on them like the real thing.
var loopbackSeq atomic.Uint32

func init() { loopbackSeq.Store(uint32(os.Getpid()%200) << 8) }

// loopbackSubnet returns a fresh 127.a.b.0/24.
func loopbackSubnet() netip.Prefix {
	n := loopbackSeq.Add(1)
	a, b := byte(20+(n>>8)%230), byte(n)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b, 0}), 24)
}

// host returns the address .i of a /24.
func host(p netip.Prefix, i byte) netip.Addr {
	b := p.Addr().As4()
	b[3] = i
	return netip.AddrFrom4(b)
}

// newTestServer returns a Server closed at the end of the test.
func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// loopbackNetwork adds a network listening on 127.a.b.1:53 and returns its
// subnet; endpoints of the test take other addresses of it, and queries can
// come from any of them (the client binds the address as its source).
func loopbackNetwork(t testing.TB, s *Server, name string) netip.Prefix {
	t.Helper()
	sub := loopbackSubnet()
	if err := s.AddNetwork(Network{Name: name, Gateway: host(sub, 1), Subnet: sub}); err != nil {
		t.Fatal(err)
	}
	return sub
}

// ask sends one question to server from the source address from (zero: any),
// over proto ("udp" or "tcp"), and returns the answer.
func ask(t testing.TB, server netip.AddrPort, from netip.Addr, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m, err := tryAsk(server, from, proto, name, qtype, nil)
	if err != nil {
		t.Fatalf("ask %s %s over %s: %v", name, dns.TypeToString[qtype], proto, err)
	}
	return m
}

func tryAsk(server netip.AddrPort, from netip.Addr, proto, name string, qtype uint16, edit func(*dns.Msg)) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	if edit != nil {
		edit(q)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from.IsValid() {
		if proto == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		} else {
			d.LocalAddr = &net.UDPAddr{IP: from.AsSlice()}
		}
	}
	c := &dns.Client{Net: proto, Dialer: d, Timeout: 5 * time.Second, UDPSize: 65535}
	m, _, err := c.Exchange(q, server.String())
	return m, err
}

// addrsOf returns the A and AAAA addresses of an answer, in answer order.
func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// upstream is a DNS server the test runs on loopback (UDP and TCP on one
// port) standing for the host's resolver.
type upstream struct {
	Addr netip.AddrPort
	mu   sync.Mutex
	seen []string // "udp example.test. A" per query, in order
}

// startUpstream serves answer on 127.0.0.1 (UDP and TCP, the same port).
func startUpstream(t testing.TB, answer func(proto string, r *dns.Msg) *dns.Msg) *upstream {
	t.Helper()
	u := &upstream{}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close()
		if attempt > 20 {
			t.Fatalf("no port free for both udp and tcp: %v", err)
		}
	}
	u.Addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	handler := func(proto string) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			u.mu.Lock()
			u.seen = append(u.seen, fmt.Sprintf("%s %s %s", proto, r.Question[0].Name, dns.TypeToString[r.Question[0].Qtype]))
			u.mu.Unlock()
			if m := answer(proto, r); m != nil {
				_ = w.WriteMsg(m)
			}
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the shutdowns registered below
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: handler("udp")},
		{Listener: ln, Handler: handler("tcp")},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

// Seen returns the queries the upstream received.
func (u *upstream) Seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// answerA answers every A question for name with ips, and NXDOMAIN for all
// else.
func answerA(name string, ips ...string) func(string, *dns.Msg) *dns.Msg {
	return func(_ string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if q.Name != dns.Fqdn(name) {
			m.Rcode = dns.RcodeNameError
			return m
		}
		if q.Qtype == dns.TypeA {
			for _, ip := range ips {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.ParseIP(ip),
				})
			}
		}
		return m
	}
}

// deadUpstream returns an address where a UDP socket is bound but nobody
// ever reads or answers: the upstream that times out.
func deadUpstream(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// closedPort returns a loopback address where nothing listens: a query
// there is refused at once (ICMP port unreachable).
func closedPort(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	_ = pc.Close()
	return addr
}

// capture is a dns.ResponseWriter that keeps what is written, for tests that
// run the chain without sockets.
type capture struct {
	remote net.Addr
	out    [][]byte
}

func (c *capture) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

func (c *capture) Write(b []byte) (int, error) {
	c.out = append(c.out, slices.Clone(b))
	return len(b), nil
}
func (c *capture) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (c *capture) RemoteAddr() net.Addr { return c.remote }
func (c *capture) Close() error         { return nil }
func (c *capture) TsigStatus() error    { return nil }
func (c *capture) TsigTimersOnly(bool)  {}
func (c *capture) Hijack()              {}

// errorsIs fails unless err is of class target.
func errorsIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one of class %v", err, target)
	}
}
