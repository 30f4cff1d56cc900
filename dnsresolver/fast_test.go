package dnsresolver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// socketless returns a network with records and no sockets, to run the fast
// path and the chain on packets directly. Forwarding has no upstream, so it
// answers SERVFAIL at once.
func socketless(t testing.TB) (*network, netip.Prefix) {
	t.Helper()
	s := New(Config{Upstreams: []netip.AddrPort{}})
	sub := netip.MustParsePrefix("10.77.0.0/24")
	n := s.newNetwork(Network{Name: "proj_default", Gateway: host(sub, 1), Subnet: sub, Port: DefaultPort})
	eps := webReplicas(sub, 3)
	eps = append(eps,
		Endpoint{Container: "proj-db-1", IP: host(sub, 20), Service: "db", Aliases: []string{"database"}},
		Endpoint{Container: "proj-v6-1", IP: host(sub, 21), IPv6: netip.MustParseAddr("fd00::21"), Service: "v6"},
		Endpoint{Container: "proj-app-1", IP: host(sub, 30), Links: []Link{{Alias: "pg", Target: "db"}}, Search: []string{"corp.example"}},
	)
	for i := range 60 {
		eps = append(eps, Endpoint{Container: fmt.Sprintf("proj-big-%d", i), IP: host(sub, byte(100+i)), Service: "big"})
	}
	n.mu.Lock()
	n.publish(eps)
	n.mu.Unlock()
	return n, sub
}

// viaChain runs pkt through the chain as a UDP datagram from src and returns
// what it wrote.
func viaChain(n *network, pkt []byte, src netip.Addr) [][]byte {
	c := &capture{remote: net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 40000))}
	n.servePacket(pkt, c)
	return c.out
}

// normalised renders a message with its answers sorted, so that two replies
// that differ only by rotation compare equal.
func normalised(t testing.TB, b []byte) string {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	var answers []string
	for _, rr := range m.Answer {
		answers = append(answers, rr.String())
	}
	slices.Sort(answers)
	m.Answer = nil
	return m.String() + "\n" + strings.Join(answers, "\n")
}

func TestFastPathAnswersLikeTheChain(t *testing.T) {
	t.Parallel()
	n, sub := socketless(t)
	app, other := host(sub, 30), host(sub, 99)
	cases := []struct {
		name  string
		qtype uint16
		from  netip.Addr
		edns  uint16
		fast  bool // the fast path must take it
	}{
		{"web.", dns.TypeA, other, 0, true},
		{"WeB.", dns.TypeA, other, 0, true},
		{"web.", dns.TypeAAAA, other, 0, true},
		{"web.", dns.TypeA, other, 1232, true},
		{"web.", dns.TypeA, other, 4096, true},
		{"web.", dns.TypeA, other, 100, true},
		{"proj-web-2.", dns.TypeA, other, 0, true},
		{"webhost3.", dns.TypeA, other, 0, true},
		{"database.", dns.TypeA, other, 0, true},
		{"db.proj_default.", dns.TypeA, other, 0, true},
		{"v6.", dns.TypeAAAA, other, 0, true},
		{"pg.", dns.TypeA, app, 0, true},
		{"pg.Corp.Example.", dns.TypeA, app, 0, true},
		{"big.", dns.TypeA, other, 1232, true},
		{"big.", dns.TypeA, other, 0, false}, // needs truncation
		{"pg.", dns.TypeA, other, 0, false},  // not this container's link: forwarded
		{"example.test.", dns.TypeA, other, 0, false},
		{"web.", dns.TypeMX, other, 0, false},
		{"web.", dns.TypeA, netip.MustParseAddr("10.78.0.5"), 0, false}, // refused
		{"nosuch.proj_default.", dns.TypeA, other, 0, false},
	}
	out := make([]byte, 0, ednsSize)
	for _, c := range cases {
		q := new(dns.Msg)
		q.SetQuestion(c.name, c.qtype)
		q.Id = 777
		if c.edns > 0 {
			q.SetEdns0(c.edns, true)
		}
		pkt, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s from %s edns %d", c.name, dns.TypeToString[c.qtype], c.from, c.edns)
		fast, ok := n.answerFast(pkt, c.from, out[:0])
		if ok != c.fast {
			t.Errorf("%s: fast path took it: %v, want %v", what, ok, c.fast)
		}
		slow := viaChain(n, pkt, c.from)
		if len(slow) != 1 {
			t.Fatalf("%s: the chain wrote %d replies", what, len(slow))
		}
		if !ok {
			continue
		}
		if f, s := normalised(t, fast), normalised(t, slow[0]); f != s {
			t.Errorf("%s: fast path and chain differ\nfast:\n%s\nchain:\n%s", what, f, s)
		}
	}
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	n, sub := socketless(t)
	q := new(dns.Msg)
	q.SetQuestion("Web.", dns.TypeA)
	pkt, _ := q.Pack()
	out := make([]byte, 0, ednsSize)
	src := host(sub, 99)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := n.answerFast(pkt, src, out[:0]); !ok {
			t.Fatal("fast path refused a plain A query")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per query on the fast path, want 0", allocs)
	}
}

func BenchmarkFastPath(b *testing.B) {
	n, sub := socketless(b)
	q := new(dns.Msg)
	q.SetQuestion("web.", dns.TypeA)
	pkt, _ := q.Pack()
	out := make([]byte, 0, ednsSize)
	src := host(sub, 99)
	b.ReportAllocs()
	for b.Loop() {
		n.answerFast(pkt, src, out[:0])
	}
}

func BenchmarkChain(b *testing.B) {
	n, sub := socketless(b)
	q := new(dns.Msg)
	q.SetQuestion("web.", dns.TypeA)
	pkt, _ := q.Pack()
	src := host(sub, 99)
	b.ReportAllocs()
	for b.Loop() {
		viaChain(n, pkt, src)
	}
}
