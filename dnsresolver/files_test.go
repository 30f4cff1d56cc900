package dnsresolver

import (
	"flag"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/dns")

// golden compares got with testdata/dns/<name>.golden, or rewrites it under
// -update; on a difference it prints the lines that differ.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("..", "testdata", "dns", name+".golden"), got, *update)
}

const hostResolvConf = `# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
nameserver 127.0.0.53
options edns0 trust-ad
search lan corp.example
sortlist 130.155.160.0/255.255.240.0
`

func TestResolvConf(t *testing.T) {
	t.Parallel()
	ns := netip.MustParseAddr("10.89.0.1")
	for _, c := range []struct {
		name string
		spec ResolvConfSpec
		ups  []netip.AddrPort
	}{
		{"resolvconf/inherit-host", ResolvConfSpec{Nameserver: ns, Host: []byte(hostResolvConf)}, nil},
		{"resolvconf/compose-dns", ResolvConfSpec{
			Nameserver: ns, Host: []byte(hostResolvConf),
			DNS:     []string{"1.1.1.1", "2606:4700:4700::1111", "192.0.2.9:5353"},
			Search:  []string{"svc.example", "."},
			Options: []string{"ndots:2", "timeout:1"},
		}, []netip.AddrPort{
			netip.MustParseAddrPort("1.1.1.1:53"),
			netip.MustParseAddrPort("[2606:4700:4700::1111]:53"),
			netip.MustParseAddrPort("192.0.2.9:5353"),
		}},
		{"resolvconf/no-search-bad-ndots", ResolvConfSpec{
			Nameserver: ns, Host: []byte(hostResolvConf),
			Search: []string{"."}, Options: []string{"ndots:x", "rotate"},
		}, nil},
		{"resolvconf/empty-host", ResolvConfSpec{Nameserver: ns}, nil},
	} {
		got, ups, err := ResolvConf(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(ups, c.ups) {
			t.Errorf("%s: upstreams %v, want %v", c.name, ups, c.ups)
		}
		golden(t, c.name, got)
		// What the C library will read back: berth's resolver only.
		if back := ParseResolvConf(got); !slices.Equal(back.Nameservers, []netip.Addr{ns}) {
			t.Errorf("%s: nameservers read back %v", c.name, back.Nameservers)
		}
	}
	_, _, err := ResolvConf(ResolvConfSpec{Nameserver: ns, DNS: []string{"dns.google"}})
	errorsIs(t, err, errdefs.ErrInvalidArgument)
	_, _, err = ResolvConf(ResolvConfSpec{})
	errorsIs(t, err, errdefs.ErrInvalidArgument)
}

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	rc := ParseResolvConf([]byte(hostResolvConf + "nameserver not-an-ip\nnameserver fe80::1%eth0\ndomain old.example\n"))
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53")}
	if got := rc.Upstreams(); !slices.Equal(got, want) {
		t.Errorf("upstreams %v, want %v", got, want)
	}
	if !slices.Equal(rc.Search, []string{"old.example"}) {
		t.Errorf("search %v: the last search or domain line wins", rc.Search)
	}
	if !slices.Equal(rc.Options, []string{"edns0", "trust-ad"}) || len(rc.Other) != 1 {
		t.Errorf("options %v other %v", rc.Options, rc.Other)
	}
}

func TestHostsFile(t *testing.T) {
	t.Parallel()
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	golden(t, "hosts/full", HostsFile(HostsSpec{
		Hostname: "web", Domainname: "corp.example", IP: ip("10.89.0.11"),
		ExtraHosts: []HostEntry{
			{IP: ip("192.0.2.10"), Names: []string{"somehost"}},
			{IP: ip("10.89.0.1"), Names: []string{"host.docker.internal"}},
			{IP: ip("2001:db8::5"), Names: []string{"v6host"}},
			{Names: []string{"no-address"}},
		},
		Links: []HostEntry{{IP: ip("10.89.0.20"), Names: []string{"pg", "proj-db-1"}}},
	}))
	golden(t, "hosts/fqdn-hostname", HostsFile(HostsSpec{Hostname: "api.internal.example", IP: ip("10.89.0.12")}))
	golden(t, "hosts/no-network", HostsFile(HostsSpec{Hostname: "lonely"}))
}

func TestLinkEnv(t *testing.T) {
	t.Parallel()
	env := LinkEnv(LinkEnvSpec{
		Alias: "my-db", Container: "proj-web-1", IP: netip.MustParseAddr("10.89.0.20"),
		Ports: []Port{
			{Number: 8001, Proto: "tcp"}, {Number: 53, Proto: "udp"}, {Number: 5432, Proto: "tcp"},
			{Number: 8000, Proto: "tcp"}, {Number: 8002, Proto: "tcp"}, {Number: 9000},
		},
		Env: []string{"POSTGRES_DB=app", "PATH=/usr/bin", "HOME=/root", "EMPTY=", "NOVALUE", "URL=a=b"},
	})
	golden(t, "linkenv/ports-ranges-env", []byte(strings.Join(env, "\n")+"\n"))

	// Docker's own example (docs "Legacy container links"): one port.
	env = LinkEnv(LinkEnvSpec{
		Alias: "db", Container: "web", IP: netip.MustParseAddr("172.17.0.5"),
		Ports: []Port{{Number: 5432, Proto: "tcp"}},
	})
	want := []string{
		"DB_PORT=tcp://172.17.0.5:5432",
		"DB_PORT_5432_TCP=tcp://172.17.0.5:5432",
		"DB_PORT_5432_TCP_ADDR=172.17.0.5",
		"DB_PORT_5432_TCP_PORT=5432",
		"DB_PORT_5432_TCP_PROTO=tcp",
		"DB_NAME=/web/db",
	}
	if !slices.Equal(env, want) {
		t.Errorf("LinkEnv:\n%s\nwant:\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
	if env := LinkEnv(LinkEnvSpec{Alias: "x", Container: "c", IP: netip.MustParseAddr("10.0.0.1")}); !slices.Equal(env, []string{"X_NAME=/c/x"}) {
		t.Errorf("no ports: %v", env)
	}
}

// TestAnswersGolden renders the chain's answers to a fixed sequence of
// queries on the fixture network: what a container sees, byte for byte
// (IDs zeroed), rotation included.
func TestAnswersGolden(t *testing.T) {
	t.Parallel()
	n, sub := socketless(t)
	app, other := host(sub, 30), host(sub, 99)
	var out strings.Builder
	for _, c := range []struct {
		name  string
		qtype uint16
		from  netip.Addr
	}{
		{"web.", dns.TypeA, other},
		{"web.", dns.TypeA, other},
		{"WEB.proj_default.", dns.TypeA, other},
		{"web.", dns.TypeAAAA, other},
		{"v6.", dns.TypeAAAA, other},
		{"v6.", dns.TypeANY, other},
		{"database.", dns.TypeA, other},
		{"pg.", dns.TypeA, app},
		{"pg.corp.example.", dns.TypeA, app},
		{"12.0.77.10.in-addr.arpa.", dns.TypePTR, other},
		{"200.0.77.10.in-addr.arpa.", dns.TypePTR, other},
		{"1.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, other},
		{"nosuch.proj_default.", dns.TypeA, other},
		{"proj-db-1.", dns.TypeTXT, other},
		{"example.test.", dns.TypeA, other},
		{"web.", dns.TypeA, netip.MustParseAddr("192.0.2.1")},
	} {
		q := new(dns.Msg)
		q.SetQuestion(c.name, c.qtype)
		q.Id = 0
		pkt, _ := q.Pack()
		replies := viaChain(n, pkt, c.from)
		fmt.Fprintf(&out, "### %s %s from %s\n", c.name, dns.TypeToString[c.qtype], c.from)
		for _, r := range replies {
			m := new(dns.Msg)
			if err := m.Unpack(r); err != nil {
				t.Fatal(err)
			}
			out.WriteString(m.String() + "\n")
		}
	}
	golden(t, "answers", []byte(out.String()))
}

func TestReverseAddrRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"10.0.0.1", "255.255.255.255", "0.0.0.0", "fd00::21", "2001:db8:1:2:3:4:5:6"} {
		ip := netip.MustParseAddr(s)
		rev, err := dns.ReverseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := reverseAddr(rev); !ok || got != ip {
			t.Errorf("reverseAddr(%s) = %v %v, want %s", rev, got, ok, ip)
		}
	}
	for _, bad := range []string{"1.2.3.in-addr.arpa.", "256.1.1.1.in-addr.arpa.", "01.1.1.1.in-addr.arpa.", "x.1.1.1.in-addr.arpa.", "1.ip6.arpa.", "web."} {
		if got, ok := reverseAddr(bad); ok {
			t.Errorf("reverseAddr(%s) = %v, want no address", bad, got)
		}
	}
}
