package dnsresolver

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"
)

// These tests run real listeners on loopback addresses (127.a.b.1:53) and ask
// them with miekg/dns clients bound to chosen source addresses, which stand
// for containers. netns_linux_test.go asks the same from real network
// namespaces with busybox nslookup.

func webReplicas(sub netip.Prefix, n int) []Endpoint {
	var eps []Endpoint
	for i := 1; i <= n; i++ {
		eps = append(eps, Endpoint{
			Container: fmt.Sprintf("proj-web-%d", i),
			IP:        host(sub, byte(10+i)),
			Service:   "web",
			Hostname:  fmt.Sprintf("webhost%d", i),
		})
	}
	return eps
}

func TestServiceNameAnswersEveryReplicaRotated(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "proj_default")
	if err := s.SetEndpoints("proj_default", webReplicas(sub, 3)); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("proj_default")
	want := []string{host(sub, 11).String(), host(sub, 12).String(), host(sub, 13).String()}
	for _, proto := range []string{"udp", "tcp"} {
		firsts := map[string]bool{}
		for range 3 {
			m := ask(t, srv, netip.Addr{}, proto, "web", dns.TypeA)
			got := addrsOf(m)
			if !slices.Equal(sorted(got), want) {
				t.Fatalf("%s: web answers %v, want all of %v", proto, got, want)
			}
			if m.Answer[0].Header().Ttl != uint32(DefaultTTL.Seconds()) {
				t.Errorf("TTL %d, want %v", m.Answer[0].Header().Ttl, DefaultTTL)
			}
			firsts[got[0]] = true
		}
		// Three queries in a row start at three different replicas.
		if len(firsts) != 3 {
			t.Errorf("%s: first addresses over three queries: %v, want each replica once", proto, firsts)
		}
	}
}

func TestEveryNameOfAContainerResolves(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "proj_default")
	ip := host(sub, 20)
	err := s.SetEndpoints("proj_default", []Endpoint{{
		Container: "proj-db-1", IP: ip, Service: "db", Hostname: "pghost.",
		Aliases: []string{"database", "Postgres-Primary", "0123456789ab"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("proj_default")
	for _, name := range []string{
		"proj-db-1", "db", "pghost", "database", "postgres-primary", "0123456789ab",
		"PROJ-DB-1", "DataBase", "db.proj_default", "Proj-DB-1.PROJ_DEFAULT.",
	} {
		m := ask(t, srv, netip.Addr{}, "udp", name, dns.TypeA)
		if got := addrsOf(m); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{ip.String()}) {
			t.Errorf("%s: rcode %s, answers %v; want %s", name, dns.RcodeToString[m.Rcode], got, ip)
			continue
		}
		// The answer's owner is the name as asked: resolvers that randomise
		// the case of their questions (0x20) check it.
		if owner := m.Answer[0].Header().Name; owner != dns.Fqdn(name) {
			t.Errorf("%s: answer owner %q, want the question's spelling", name, owner)
		}
		if !m.Authoritative || !m.RecursionAvailable {
			t.Errorf("%s: flags aa=%v ra=%v, want both", name, m.Authoritative, m.RecursionAvailable)
		}
	}
	// A name in the network's own domain that does not exist is NXDOMAIN,
	// not a question for the upstreams.
	if m := ask(t, srv, netip.Addr{}, "udp", "nosuch.proj_default", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("nosuch.proj_default: rcode %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

func TestAAAAOfAnIPv4OnlyNameIsAnEmptyAnswer(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	v6 := netip.MustParseAddr("fd00:1::7")
	err := s.SetEndpoints("n", []Endpoint{
		{Container: "v4only", IP: host(sub, 5)},
		{Container: "dual", IP: host(sub, 6), IPv6: v6},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	for _, proto := range []string{"udp", "tcp"} {
		m := ask(t, srv, netip.Addr{}, proto, "v4only", dns.TypeAAAA)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Errorf("%s: AAAA v4only: rcode %s answers %v, want NOERROR and none", proto, dns.RcodeToString[m.Rcode], m.Answer)
		}
		m = ask(t, srv, netip.Addr{}, proto, "v4only", dns.TypeMX)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Errorf("%s: MX v4only: rcode %s answers %v, want NOERROR and none", proto, dns.RcodeToString[m.Rcode], m.Answer)
		}
		m = ask(t, srv, netip.Addr{}, proto, "dual", dns.TypeAAAA)
		if got := addrsOf(m); !slices.Equal(got, []string{v6.String()}) {
			t.Errorf("%s: AAAA dual: %v, want %s", proto, got, v6)
		}
	}
}

func TestPTRNamesTheContainerOnTheNetwork(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("nothing.test"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	sub := loopbackNetwork(t, s, "proj_default")
	if err := s.SetEndpoints("proj_default", webReplicas(sub, 2)); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("proj_default")
	rev, _ := dns.ReverseAddr(host(sub, 12).String())
	m := ask(t, srv, netip.Addr{}, "udp", rev, dns.TypePTR)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "proj-web-2.proj_default." {
		t.Fatalf("PTR %s: %v, want proj-web-2.proj_default.", rev, m.Answer)
	}
	// An address of the subnet without a container: NXDOMAIN, and the
	// network's private reverse zone never goes upstream.
	rev, _ = dns.ReverseAddr(host(sub, 99).String())
	if m := ask(t, srv, netip.Addr{}, "udp", rev, dns.TypePTR); m.Rcode != dns.RcodeNameError {
		t.Errorf("PTR of a free address: rcode %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	if seen := up.Seen(); len(seen) != 0 {
		t.Errorf("upstream was asked %v", seen)
	}
}

func TestLinkAliasResolvesForTheLinkingContainerOnly(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("nothing.test"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	sub := loopbackNetwork(t, s, "n")
	linking, other := host(sub, 30), host(sub, 31)
	err := s.SetEndpoints("n", []Endpoint{
		{Container: "proj-db-1", IP: host(sub, 20), Service: "db"},
		{Container: "proj-app-1", IP: linking, Service: "app", Links: []Link{{Alias: "pg", Target: "db"}}},
		{Container: "proj-other-1", IP: other, Service: "other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	for _, proto := range []string{"udp", "tcp"} {
		m := ask(t, srv, linking, proto, "PG", dns.TypeA)
		if got := addrsOf(m); !slices.Equal(got, []string{host(sub, 20).String()}) {
			t.Errorf("%s: pg from the linking container: %v, want the db's address", proto, got)
		}
		m = ask(t, srv, other, proto, "pg", dns.TypeA)
		if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
			t.Errorf("%s: pg from another container: rcode %s %v, want NXDOMAIN (the upstream's)", proto, dns.RcodeToString[m.Rcode], m.Answer)
		}
	}
	// The alias follows its target: recreate the db elsewhere.
	if err := s.PutEndpoint("n", Endpoint{Container: "proj-db-1", IP: host(sub, 21), Service: "db"}); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(ask(t, srv, linking, "udp", "pg", dns.TypeA)); !slices.Equal(got, []string{host(sub, 21).String()}) {
		t.Errorf("pg after the db was recreated: %v, want %s", got, host(sub, 21))
	}
}

func TestNetworksDoNotSeeEachOthersNames(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("nothing.test"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	subA := loopbackNetwork(t, s, "a")
	subB := loopbackNetwork(t, s, "b")
	if err := s.SetEndpoints("a", []Endpoint{{Container: "only-on-a", IP: host(subA, 10), Service: "svc-a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEndpoints("b", []Endpoint{{Container: "only-on-b", IP: host(subB, 10), Service: "svc-b"}}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Addr("a")
	b, _ := s.Addr("b")
	for _, c := range []struct {
		srv  netip.AddrPort
		name string
		want int
	}{
		{a, "svc-a", dns.RcodeSuccess}, {a, "only-on-a", dns.RcodeSuccess},
		{a, "svc-b", dns.RcodeNameError}, {a, "only-on-b", dns.RcodeNameError}, {a, "only-on-b.b", dns.RcodeNameError},
		{b, "svc-b", dns.RcodeSuccess}, {b, "svc-a", dns.RcodeNameError}, {b, "only-on-a", dns.RcodeNameError},
	} {
		m := ask(t, c.srv, netip.Addr{}, "udp", c.name, dns.TypeA)
		if m.Rcode != c.want || (c.want == dns.RcodeNameError && len(m.Answer) > 0) {
			t.Errorf("%s on %s: rcode %s %v, want %s", c.name, c.srv, dns.RcodeToString[m.Rcode], m.Answer, dns.RcodeToString[c.want])
		}
	}
}

func TestSearchDomainIsStrippedForTheContainerThatHasIt(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("nothing.test"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	sub := loopbackNetwork(t, s, "n")
	withSearch := host(sub, 40)
	err := s.SetEndpoints("n", []Endpoint{
		{Container: "proj-web-1", IP: host(sub, 10), Service: "web"},
		{Container: "proj-client-1", IP: withSearch, Search: []string{"corp.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	m := ask(t, srv, withSearch, "udp", "web.Corp.Example", dns.TypeA)
	if got := addrsOf(m); !slices.Equal(got, []string{host(sub, 10).String()}) || m.Answer[0].Header().Name != "web.Corp.Example." {
		t.Errorf("web.corp.example from the container searching corp.example: %v", m.Answer)
	}
	// Another container has no such search domain: the name is not berth's.
	if m := ask(t, srv, netip.Addr{}, "udp", "web.corp.example", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("web.corp.example from elsewhere: rcode %s, want the upstream's NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

func TestRecordsFollowScaleUpAndDownWithoutRestart(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")
	// One client socket for the whole test: the same listener must answer
	// every version of the records.
	conn, err := net.Dial("udp", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	count := func() int {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion("web.", dns.TypeA)
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := co.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Answer)
	}
	eps := webReplicas(sub, 5)
	if err := s.PutEndpoint("n", eps[0]); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("1 replica: %d answers", n)
	}
	for _, ep := range eps[1:] {
		if err := s.PutEndpoint("n", ep); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 5 {
		t.Fatalf("scaled to 5: %d answers", n)
	}
	if err := s.RemoveEndpoint("n", "proj-web-5"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveEndpoint("n", "proj-web-5"); err != nil {
		t.Fatalf("removing an endpoint twice: %v", err)
	}
	if n := count(); n != 4 {
		t.Fatalf("after one stopped: %d answers", n)
	}
	if err := s.SetEndpoints("n", eps[:2]); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("scaled down to 2: %d answers", n)
	}
	if err := s.SetEndpoints("n", nil); err != nil {
		t.Fatal(err)
	}
	if m := ask(t, srv, netip.Addr{}, "udp", "web", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("scaled to 0 with no upstream: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	got, _ := s.Endpoints("n")
	if len(got) != 0 {
		t.Fatalf("Endpoints after scaling to 0: %v", got)
	}
}

func TestLargeAnswersAreTruncatedForUDPAndWholeOverTCP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	if err := s.SetEndpoints("n", webReplicas(sub, 60)); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	m := ask(t, srv, netip.Addr{}, "udp", "web", dns.TypeA)
	m.Compress = true // as sent
	if !m.Truncated || len(m.Answer) >= 60 || m.Len() > 512 {
		t.Errorf("UDP without EDNS: tc=%v, %d answers, %d bytes; want TC, fewer than 60, at most 512", m.Truncated, len(m.Answer), m.Len())
	}
	m, err := tryAsk(srv, netip.Addr{}, "udp", "web.", dns.TypeA, func(q *dns.Msg) { q.SetEdns0(4096, false) })
	if err != nil {
		t.Fatal(err)
	}
	if m.Truncated || len(m.Answer) != 60 || m.IsEdns0() == nil {
		t.Errorf("UDP with EDNS 4096: tc=%v, %d answers, edns %v; want all 60 (they fit in %d bytes)", m.Truncated, len(m.Answer), m.IsEdns0(), ednsSize)
	}
	m = ask(t, srv, netip.Addr{}, "tcp", "web", dns.TypeA)
	if m.Truncated || len(m.Answer) != 60 {
		t.Errorf("TCP: tc=%v, %d answers; want all 60", m.Truncated, len(m.Answer))
	}
}

func TestServerErrorsHaveClasses(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	errorsIs(t, s.AddNetwork(Network{Name: "n", Gateway: host(loopbackSubnet(), 1), Subnet: sub}), errdefs.ErrAlreadyExists)
	errorsIs(t, s.AddNetwork(Network{Name: "bad name", Gateway: host(sub, 1), Subnet: sub}), errdefs.ErrInvalidArgument)
	errorsIs(t, s.AddNetwork(Network{Name: "nogw", Subnet: sub}), errdefs.ErrInvalidArgument)
	errorsIs(t, s.RemoveNetwork("nosuch"), errdefs.ErrNotFound)
	errorsIs(t, s.PutEndpoint("nosuch", Endpoint{Container: "c", IP: host(sub, 2)}), errdefs.ErrNotFound)
	for _, ep := range []Endpoint{
		{IP: host(sub, 2)},
		{Container: "c"},
		{Container: "c", IP: host(sub, 2), IPv6: host(sub, 3)},
		{Container: "c", IP: host(sub, 2), Upstreams: []netip.AddrPort{{}}},
	} {
		errorsIs(t, s.PutEndpoint("n", ep), errdefs.ErrInvalidArgument)
	}
	twice := []Endpoint{{Container: "c", IP: host(sub, 2)}, {Container: "c", IP: host(sub, 3)}}
	errorsIs(t, s.SetEndpoints("n", twice), errdefs.ErrInvalidArgument)
}

func TestNamesThatCannotBeDNSNamesAreLeftOut(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	ip := host(sub, 2)
	err := s.PutEndpoint("n", Endpoint{
		Container: "proj-web-1", IP: ip, Service: "web",
		Hostname: "has space", Aliases: []string{"a..b", "ok-alias", "é"},
		Links:  []Link{{Alias: "x"}, {Alias: "good", Target: "web"}},
		Search: []string{"bad domain", "corp.example"},
	})
	if err != nil {
		t.Fatalf("an endpoint with some bad names is refused: %v", err)
	}
	srv, _ := s.Addr("n")
	for _, name := range []string{"proj-web-1", "web", "ok-alias", "web.corp.example"} {
		if got := addrsOf(ask(t, srv, ip, "udp", name, dns.TypeA)); !slices.Equal(got, []string{ip.String()}) {
			t.Errorf("%s: %v, want %s", name, got, ip)
		}
	}
	if got := addrsOf(ask(t, srv, ip, "tcp", "good", dns.TypeA)); !slices.Equal(got, []string{ip.String()}) {
		t.Errorf("good link alias: %v", got)
	}
}

func TestRemoveNetworkFreesTheAddress(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	loopbackNetwork(t, s, "n")
	addr, _ := s.Addr("n")
	// A client that keeps its TCP connection open must not hold the
	// removal up.
	idle, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := s.RemoveNetwork("n"); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		var err error
		if proto == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr.String()); err == nil {
				_ = pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr.String()); err == nil {
				_ = ln.Close()
			}
		}
		if err != nil {
			t.Errorf("%s %s still taken after RemoveNetwork: %v", proto, addr, err)
		}
	}
	if _, ok := s.Addr("n"); ok {
		t.Error("Addr still knows the removed network")
	}
}

func TestAddressInUseIsAnError(t *testing.T) {
	t.Parallel()
	// Another resolver holds the gateway address: berth must say so, not
	// share its UDP port with it.
	for _, proto := range []string{"tcp", "udp"} {
		sub := loopbackSubnet()
		addr := netip.AddrPortFrom(host(sub, 1), DefaultPort).String()
		var closer interface{ Close() error }
		var err error
		if proto == "tcp" {
			closer, err = net.Listen("tcp", addr)
		} else {
			closer, err = net.ListenPacket("udp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
		if err := s.AddNetwork(Network{Name: "n", Gateway: host(sub, 1), Subnet: sub}); err == nil {
			t.Errorf("%s %s taken by another socket, AddNetwork succeeded", proto, addr)
		}
		_ = closer.Close()
		// Nothing of the failed attempt stays bound.
		if err := s.AddNetwork(Network{Name: "n", Gateway: host(sub, 1), Subnet: sub}); err != nil {
			t.Errorf("after the other socket closed: %v", err)
		}
	}
}

func TestMalformedPacketsAndAnswersGetNoReply(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	if err := s.SetEndpoints("n", webReplicas(sub, 1)); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("n")
	conn, err := net.Dial("udp", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	answer := new(dns.Msg)
	answer.SetQuestion("web.", dns.TypeA)
	answer.Response = true
	answer.Id = 1
	answerBytes, _ := answer.Pack()
	for _, junk := range [][]byte{
		{0x12},
		{0, 1, 1, 0, 0, 5, 0, 0, 0, 0, 0, 0}, // five questions announced, none there
		{0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, // name pointing at itself
		answerBytes,                // an answer: replying would start a ping-pong
		make([]byte, maxQuery+100), // too big to be a query
	} {
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	// Then two real queries, one per path (web on the fast path, a name with
	// no upstream through the chain, like the junk).
	want := map[uint16]int{100: dns.RcodeSuccess, 101: dns.RcodeServerFailure}
	for id, name := range map[uint16]string{100: "web.", 101: "elsewhere.test."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.Id = id
		b, _ := q.Pack()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 65536)
	for len(want) > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the answers to %v: %v", want, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:k]); err != nil {
			t.Fatalf("a reply that does not parse: %v", err)
		}
		rcode, ok := want[m.Id]
		if !ok {
			t.Fatalf("a reply to junk: %v", m)
		}
		if m.Rcode != rcode {
			t.Errorf("query %d: rcode %s", m.Id, dns.RcodeToString[m.Rcode])
		}
		delete(want, m.Id)
	}
}

func TestQueriesDuringUpdatesSeeWholeVersions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{}})
	sub := loopbackNetwork(t, s, "n")
	srv, _ := s.Addr("n")
	versionA := webReplicas(sub, 3)
	versionB := []Endpoint{
		{Container: "proj-web-8", IP: host(sub, 21), Service: "web"},
		{Container: "proj-web-9", IP: host(sub, 22), Service: "web"},
	}
	wantA := addrList(versionA)
	wantB := addrList(versionB)
	if err := s.SetEndpoints("n", versionA); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	updates := make(chan error, 1)
	go func() {
		defer close(updates)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			eps := versionA
			if i%2 == 1 {
				eps = versionB
			}
			if err := s.SetEndpoints("n", eps); err != nil {
				updates <- err
				return
			}
		}
	}()
	for range 300 {
		for _, proto := range []string{"udp", "tcp"} {
			got := sorted(addrsOf(ask(t, srv, netip.Addr{}, proto, "web", dns.TypeA)))
			if !slices.Equal(got, wantA) && !slices.Equal(got, wantB) {
				t.Fatalf("%s: answer %v mixes two versions of the records", proto, got)
			}
		}
	}
	close(done)
	if err := <-updates; err != nil {
		t.Fatal(err)
	}
}

func addrList(eps []Endpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, ep.IP.String())
	}
	return sorted(out)
}

func TestContainerOnTwoNetworksResolvesBoth(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, answerA("nothing.test"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	front := loopbackNetwork(t, s, "front")
	back := loopbackNetwork(t, s, "back")
	proxyFront, lonely := host(front, 40), host(front, 41)
	api := host(back, 20)
	if err := s.SetEndpoints("front", []Endpoint{
		{Container: "proj-proxy-1", IP: proxyFront, Service: "proxy"},
		{Container: "proj-lonely-1", IP: lonely, Service: "lonely"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEndpoints("back", []Endpoint{
		{Container: "proj-proxy-1", IP: host(back, 40), Service: "proxy"},
		{Container: "proj-api-1", IP: api, Service: "api"},
	}); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Addr("front")
	for _, proto := range []string{"udp", "tcp"} {
		// The proxy asks its first network's listener for a name of its
		// second network.
		for _, name := range []string{"api", "proj-api-1", "api.back"} {
			if got := addrsOf(ask(t, srv, proxyFront, proto, name, dns.TypeA)); !slices.Equal(got, []string{api.String()}) {
				t.Errorf("%s: %s from the proxy (on both networks): %v, want %s", proto, name, got, api)
			}
		}
		// Its own name on the network asked comes first.
		if got := addrsOf(ask(t, srv, proxyFront, proto, "proxy", dns.TypeA)); !slices.Equal(got, []string{proxyFront.String()}) {
			t.Errorf("%s: proxy from itself: %v, want its front address", proto, got)
		}
		// A container only on front does not see back.
		if m := ask(t, srv, lonely, proto, "api", dns.TypeA); m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
			t.Errorf("%s: api from a container only on front: rcode %s %v", proto, dns.RcodeToString[m.Rcode], m.Answer)
		}
	}
	rev, _ := dns.ReverseAddr(api.String())
	if m := ask(t, srv, proxyFront, "udp", rev, dns.TypePTR); len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "proj-api-1.back." {
		t.Errorf("PTR of api from the proxy: %v", m.Answer)
	}
	// Detached from back: back's names are gone for it.
	if err := s.RemoveEndpoint("back", "proj-proxy-1"); err != nil {
		t.Fatal(err)
	}
	if m := ask(t, srv, proxyFront, "udp", "api", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("api after the proxy left back: rcode %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if err := s.PutEndpoint("back", Endpoint{Container: "proj-proxy-1", IP: host(back, 40)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveNetwork("back"); err != nil {
		t.Fatal(err)
	}
	if m := ask(t, srv, proxyFront, "udp", "api", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("api after back was removed: rcode %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
}
