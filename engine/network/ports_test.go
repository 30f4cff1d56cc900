package network

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

// TestPublishedPorts reaches a container's published TCP and UDP ports the
// ways a user would: from the host on 127.0.0.1, on the bridge's address and
// on the host's own address; from another container and from the container
// itself through the host's address (hairpin); from a container of another
// network.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	host := hostAddress(t)
	n := e.network("pub", "10.230.10.0/24")
	e.network("elsewhere", "10.230.11.0/24")
	web := e.sandbox("service web",
		PortMapping{ContainerPort: 80},
		PortMapping{ContainerPort: 80, Protocol: "udp"})
	if len(web.Ports) != 2 || web.Ports[0].HostPort == 0 || web.Ports[1].HostPort == 0 || web.Ports[1].Protocol != "udp" {
		t.Fatalf("published %+v", web.Ports)
	}
	tcpPort, udpPort := web.Ports[0].HostPort, web.Ports[1].HostPort
	webEP := e.attach(web, "pub", AttachOptions{})
	serve(t, web.Path, "web", 80)
	gw := n.Gateway.String()

	loopback := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct{ to, seen netip.Addr }{
		// 127.0.0.1 is masqueraded behind the bridge's address: the
		// container could not answer it.
		{loopback, n.Gateway},
		// The host's other addresses are kept: the container answers them
		// through its gateway, the host.
		{n.Gateway, n.Gateway},
		{host, host},
	} {
		mustAsk(t, "", "tcp", hostPort(c.to, tcpPort), "web "+c.seen.String())
		mustAsk(t, "", "udp", hostPort(c.to, udpPort), "web "+c.seen.String())
	}

	client := e.sandbox("service client")
	e.attach(client, "pub", AttachOptions{})
	for _, from := range []Sandbox{client, web} {
		// Hairpin: through the host's address back into the same bridge.
		mustAsk(t, from.Path, "tcp", hostPort(host, tcpPort), "web "+gw)
		mustAsk(t, from.Path, "udp", hostPort(host, udpPort), "web "+gw)
		mustAsk(t, from.Path, "tcp", hostPort(n.Gateway, tcpPort), "web "+gw)
	}
	stranger := e.sandbox("service stranger")
	e.attach(stranger, "elsewhere", AttachOptions{})
	mustAsk(t, stranger.Path, "tcp", hostPort(host, tcpPort), "web "+gw)
	// ...but not straight to the container's address.
	mustNotReach(t, stranger.Path, "tcp", hostPort(webEP.IP(), 80))

	// While published, the port is held: no other program can take it.
	if l, err := net.Listen("tcp4", ":"+strconv.Itoa(int(tcpPort))); err == nil {
		l.Close()
		t.Fatalf("another program could listen on published port %d", tcpPort)
	}
	if err := e.m.DeleteSandbox(web.ID); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", ":"+strconv.Itoa(int(tcpPort)))
	if err != nil {
		t.Fatalf("port %d still held after the sandbox went: %v", tcpPort, err)
	}
	l.Close()
	if _, err := ask(t, "", "tcp", hostPort(loopback, tcpPort), time.Second); err == nil {
		t.Fatalf("port %d still forwarded after the sandbox went", tcpPort)
	}
}

// TestPublishedPortOnOneHostAddress: host_ip limits a port to one address.
func TestPublishedPortOnOneHostAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	n := e.network("local", "10.230.12.0/24")
	loopback := netip.MustParseAddr("127.0.0.1")
	free := freePort(t)
	sb := e.sandbox("service local", PortMapping{HostIP: loopback, HostPort: free, ContainerPort: 8080})
	if sb.Ports[0].HostPort != free || sb.Ports[0].String() != "127.0.0.1:"+strconv.Itoa(int(free))+"->8080/tcp" {
		t.Fatalf("published %v", sb.Ports)
	}
	e.attach(sb, "local", AttachOptions{})
	serve(t, sb.Path, "local", 8080)
	mustAsk(t, "", "tcp", hostPort(loopback, free), "local "+n.Gateway.String())
	mustNotReach(t, "", "tcp", hostPort(n.Gateway, free))
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// TestPortConflict: a host port held by another program, or published by
// another container, is refused with an error naming the port and the
// owner, before anything is made.
func TestPortConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.network("conflict", "10.230.13.0/24")
	taken, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p := uint16(taken.Addr().(*net.TCPAddr).Port)
	ps := strconv.Itoa(int(p))

	for _, hostIP := range []netip.Addr{{}, netip.MustParseAddr("127.0.0.1")} {
		_, err = e.m.CreateSandbox(SandboxOptions{Owner: "service web", Ports: []PortMapping{
			{ContainerPort: 81, Protocol: "udp"}, // fine on its own, and must be let go
			{HostIP: hostIP, HostPort: p, ContainerPort: 80},
		}})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "service web") ||
			!strings.Contains(err.Error(), "port "+ps) || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("publish %s:%d taken by another program: %v", hostIP, p, err)
		}
	}
	if sbs := e.m.Sandboxes(); len(sbs) != 0 {
		t.Fatalf("refused sandbox recorded: %+v", sbs)
	}
	if ents, _ := os.ReadDir(e.m.netnsDir()); len(ents) != 0 {
		t.Fatalf("refused sandbox left a namespace: %v", ents)
	}
	links, _ := whole(netlink.LinkList)
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, e.m.prefix+"ve") {
			t.Fatalf("refused sandbox left %s", l.Attrs().Name)
		}
	}

	// A range skips the taken port.
	a := e.sandbox("service a", PortMapping{HostPort: p, HostPortEnd: p + 5, ContainerPort: 80})
	q := a.Ports[0].HostPort
	if q <= p || q > p+5 {
		t.Fatalf("range %d-%d gave %d", p, p+5, q)
	}
	// Published by another container: named in the error.
	_, err = e.m.CreateSandbox(SandboxOptions{Owner: "service b", Ports: []PortMapping{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: q, ContainerPort: 80}}})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "published by service a") || !strings.Contains(err.Error(), "service b") {
		t.Fatalf("publish a port another container publishes: %v", err)
	}
	// The same number over UDP is another port.
	e.sandbox("service c", PortMapping{HostPort: q, ContainerPort: 80, Protocol: "udp"})
	// An address that is not the host's.
	_, err = e.m.CreateSandbox(SandboxOptions{Owner: "service d", Ports: []PortMapping{{HostIP: netip.MustParseAddr("203.0.113.9"), ContainerPort: 80}}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not an address of this host") {
		t.Fatalf("publish on a foreign address: %v", err)
	}
}

func TestParsePortSpec(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		spec string
		want []PortMapping
		bad  bool
	}{
		{"80", []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}, false},
		{"8080:80", []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}, false},
		{"127.0.0.1:8080:80/udp", []PortMapping{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Protocol: "udp"}}, false},
		{"127.0.0.1::80", []PortMapping{{HostIP: lo, ContainerPort: 80, Protocol: "tcp"}}, false},
		{"0.0.0.0:8080:80", []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}, false},
		{"8000-8001:80-81", []PortMapping{{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 8001, ContainerPort: 81, Protocol: "tcp"}}, false},
		{"8000-8010:80", []PortMapping{{HostPort: 8000, HostPortEnd: 8010, ContainerPort: 80, Protocol: "tcp"}}, false},
		{"80-81", []PortMapping{{ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 81, Protocol: "tcp"}}, false},
		{"8000-8002:80-81", nil, true},
		{"80/sctp", nil, true},
		{"[::1]:80:80", nil, true},
		{"0", nil, true},
		{"70000", nil, true},
		{"a:b:c:d", nil, true},
		{"81-80", nil, true},
		{"host:80:80", nil, true},
	}
	for _, c := range cases {
		got, err := ParsePortSpec(c.spec)
		if c.bad {
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%q: got %v, %v; want an invalid-argument error", c.spec, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, %v; want %+v", c.spec, got, err, c.want)
		}
	}
	if lo, hi, err := ParsePublished("8000-8010"); lo != 8000 || hi != 8010 || err != nil {
		t.Errorf("ParsePublished range: %d %d %v", lo, hi, err)
	}
	if lo, hi, err := ParsePublished("8080"); lo != 8080 || hi != 0 || err != nil {
		t.Errorf("ParsePublished single: %d %d %v", lo, hi, err)
	}
}

// FuzzParsePortSpec: whatever comes in, the parser returns mappings that
// pass check, or an error; a mapping written back parses to itself.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80/udp", "127.0.0.1:8000-8010:80", "1-3:4-6", "::80", "[::1]:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ms, err := ParsePortSpec(spec)
		if err != nil {
			return
		}
		for _, m := range ms {
			if _, err := m.check(); err != nil {
				t.Fatalf("%q gave %+v, which check refuses: %v", spec, m, err)
			}
			again, err := ParsePortSpec(m.String())
			if err != nil || len(again) != 1 || again[0] != m {
				t.Fatalf("%q: %+v written as %q parses to %+v, %v", spec, m, m.String(), again, err)
			}
		}
	})
}
