package dnsresolver

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestUnknownNamesAreForwardedUpstream(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("example.test", "192.0.2.7"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")
	for _, proto := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetQuestion("example.test.", dns.TypeA)
		q.Id = 4242
		m, _, err := (&dns.Client{Net: proto}).Exchange(q, srv.String())
		if err != nil {
			t.Fatal(err)
		}
		if got := addrsOf(m); m.Id != 4242 || !slices.Equal(got, []string{"192.0.2.7"}) {
			t.Errorf("%s: id %d answers %v; want the client's id and the upstream's 192.0.2.7", proto, m.Id, got)
		}
		if m.IsEdns0() != nil {
			t.Errorf("%s: the client sent no EDNS but the answer has an OPT record", proto)
		}
	}
	if m := ask(t, srv, netip.Addr{}, "udp", "other.test", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("other.test: rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

func TestFailoverFromDeadUpstreams(t *testing.T) {
	t.Parallel()
	// One upstream never answers (timeout), one port has nobody (refused at
	// once), one says SERVFAIL; the last one works.
	servfail := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		return m
	})
	good := startUpstream(t, answerA("example.test", "192.0.2.8"))
	s := newTestServer(t, Config{
		Upstreams:       []netip.AddrPort{deadUpstream(t), servfail.Addr, closedPort(t), good.Addr},
		UpstreamTimeout: 300 * time.Millisecond,
	})
	loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")
	m := ask(t, srv, netip.Addr{}, "udp", "example.test", dns.TypeA)
	if got := addrsOf(m); !slices.Equal(got, []string{"192.0.2.8"}) {
		t.Fatalf("answers %v (rcode %s), want 192.0.2.8 from the last upstream", got, dns.RcodeToString[m.Rcode])
	}
	if len(servfail.Seen()) != 1 {
		t.Errorf("the SERVFAIL upstream saw %v, want one query", servfail.Seen())
	}
	// With only failing upstreams the client gets SERVFAIL, not silence.
	s2 := newTestServer(t, Config{Upstreams: []netip.AddrPort{deadUpstream(t)}, UpstreamTimeout: 200 * time.Millisecond})
	loopbackNetwork(t, s2, "n")
	srv2, _ := s2.Addr("n")
	if m := ask(t, srv2, netip.Addr{}, "udp", "example.test", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("all upstreams dead: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

func TestTruncatedUpstreamAnswerIsAskedAgainOverTCP(t *testing.T) {
	t.Parallel()
	const records = 100
	up := startUpstream(t, func(proto string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		if proto == "udp" {
			m.Truncated = true // too big for UDP: the whole answer only over TCP
			return m
		}
		for i := range records {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(198, 51, 100, byte(i)),
			})
		}
		return m
	})
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")

	m := ask(t, srv, netip.Addr{}, "tcp", "big.test", dns.TypeA)
	if len(m.Answer) != records || m.Truncated {
		t.Fatalf("over TCP: %d answers tc=%v, want %d", len(m.Answer), m.Truncated, records)
	}
	m = ask(t, srv, netip.Addr{}, "udp", "big.test", dns.TypeA)
	m.Compress = true
	if !m.Truncated || len(m.Answer) == 0 || len(m.Answer) >= records || m.Len() > dns.MinMsgSize {
		t.Fatalf("over UDP without EDNS: %d answers tc=%v %d bytes; want part of them in 512 bytes with TC", len(m.Answer), m.Truncated, m.Len())
	}
	seen := up.Seen()
	if !slices.Contains(seen, "tcp big.test. A") || !slices.Contains(seen, "udp big.test. A") {
		t.Errorf("upstream saw %v; want the query over UDP then TCP", seen)
	}
}

func TestContainerUpstreamsReplaceTheServers(t *testing.T) {
	t.Parallel()
	hostUp := startUpstream(t, answerA("example.test", "192.0.2.1"))
	ownUp := startUpstream(t, answerA("example.test", "192.0.2.2"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{hostUp.Addr}})
	sub := loopbackNetwork(t, s, "n")
	custom, plain := host(sub, 50), host(sub, 51)
	err := s.SetEndpoints("n", []Endpoint{
		{Container: "custom", IP: custom, Upstreams: []netip.AddrPort{ownUp.Addr}},
		{Container: "plain", IP: plain},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	if got := addrsOf(ask(t, srv, custom, "udp", "example.test", dns.TypeA)); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Errorf("from the container with its own dns: %v, want its upstream's 192.0.2.2", got)
	}
	if got := addrsOf(ask(t, srv, plain, "udp", "example.test", dns.TypeA)); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("from another container: %v, want the host upstream's 192.0.2.1", got)
	}
	// Its own names still come from berth.
	if got := addrsOf(ask(t, srv, custom, "udp", "plain", dns.TypeA)); !slices.Equal(got, []string{plain.String()}) {
		t.Errorf("container name from the container with its own dns: %v", got)
	}
}

func TestUpstreamsFollowTheHostResolvConf(t *testing.T) {
	t.Parallel()
	first := startUpstream(t, answerA("example.test", "192.0.2.11"))
	second := startUpstream(t, answerA("example.test", "192.0.2.12"))
	// resolv.conf cannot name a port, and the test upstreams have random
	// ones: the reading and re-reading of the file is checked on the
	// upstream source, the use of the list by a real exchange.
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.53\nsearch lan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newUpstreamSource(Config{ResolvConf: path})
	if got := src.get(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}) {
		t.Fatalf("upstreams from %s: %v", path, got)
	}
	if err := os.WriteFile(path, []byte("nameserver 192.0.2.99\nnameserver ::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A later mtime, as a rewrite seconds later would have.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.checked = time.Time{} // as if the recheck interval had passed
	src.mu.Unlock()
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.99:53"), netip.MustParseAddrPort("[::1]:53")}
	if got := src.get(); !slices.Equal(got, want) {
		t.Fatalf("after the file changed: %v, want %v", got, want)
	}

	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{first.Addr, second.Addr}})
	loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")
	if got := addrsOf(ask(t, srv, netip.Addr{}, "udp", "example.test", dns.TypeA)); !slices.Equal(got, []string{"192.0.2.11"}) {
		t.Errorf("answers %v, want the first upstream's", got)
	}
	if len(second.Seen()) != 0 {
		t.Errorf("second upstream asked although the first answered: %v", second.Seen())
	}
}

func TestNeverForwardsToItself(t *testing.T) {
	t.Parallel()
	// The host resolv.conf names a berth gateway: forwarding there would
	// loop through berth until the client gave up.
	sub := loopbackSubnet()
	gw := host(sub, 1)
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{netip.AddrPortFrom(gw, DefaultPort)}, UpstreamTimeout: 5 * time.Second})
	if err := s.AddNetwork(Network{Name: "n", Gateway: gw, Subnet: sub}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m := ask(t, netip.AddrPortFrom(gw, DefaultPort), netip.Addr{}, "udp", "example.test", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v: the query went round", d)
	}
}

func TestRefusesSourcesOutsideTheNetwork(t *testing.T) {
	t.Parallel()
	sub := netip.MustParsePrefix("10.200.0.0/24")
	lo := Network{Name: "lo", Gateway: netip.MustParseAddr("127.0.0.1"), Subnet: sub}
	br := Network{Name: "br", Gateway: netip.MustParseAddr("10.200.0.1"), Subnet: sub}
	s := New(Config{})
	for _, c := range []struct {
		spec Network
		src  string
		want bool
	}{
		{br, "10.200.0.9", true},
		{br, "10.200.0.1", true}, // the host through the gateway address
		{br, "10.200.1.9", false},
		{br, "127.0.0.1", false},
		{br, "192.0.2.1", false},
		{lo, "127.3.4.5", true},
		{lo, "10.200.0.9", true},
		{lo, "10.9.9.9", false},
	} {
		n := s.newNetwork(c.spec)
		if got := n.allowed(netip.MustParseAddr(c.src)); got != c.want {
			t.Errorf("listener on %s, source %s: allowed=%v, want %v", c.spec.Gateway, c.src, got, c.want)
		}
	}
}

func BenchmarkForward(b *testing.B) {
	up := startUpstream(b, answerA("example.test", "192.0.2.7"))
	s := newTestServer(b, Config{Upstreams: []netip.AddrPort{up.Addr}})
	sub := netip.MustParsePrefix("10.77.0.0/24")
	n := s.newNetwork(Network{Name: "n", Gateway: host(sub, 1), Subnet: sub, Port: DefaultPort})
	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeA)
	pkt, _ := q.Pack()
	b.ReportAllocs()
	for b.Loop() {
		if out := viaChain(n, pkt, host(sub, 9)); len(out) != 1 {
			b.Fatal("no answer")
		}
	}
}
