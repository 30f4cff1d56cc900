package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/engine/network/ipam"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestContainerToContainer runs busybox httpd in one sandbox and fetches a
// page with busybox wget from another on the same network, both entered
// with nsenter --net, as a runtime joins a sandbox by its path.
func TestContainerToContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	tools := testutil.RequireCommand(t, "nsenter")
	bb := testutil.Busybox(t)
	n := e.network("c2c", "10.230.1.0/24")
	web := e.sandbox("service web")
	client := e.sandbox("service client")
	webEP := e.attach(web, "c2c", AttachOptions{Aliases: []string{"web"}})
	clientEP := e.attach(client, "c2c", AttachOptions{})

	if webEP.Interface != "eth0" || webEP.IP().String() != "10.230.1.2" || webEP.MAC != "02:42:0a:e6:01:02" {
		t.Fatalf("first endpoint = %s %s %s, want eth0 10.230.1.2 02:42:0a:e6:01:02", webEP.Interface, webEP.IP(), webEP.MAC)
	}
	if clientEP.IP().String() != "10.230.1.3" || clientEP.Gateway != n.Gateway {
		t.Fatalf("second endpoint = %s gw %s", clientEP.IP(), clientEP.Gateway)
	}
	if dev, gw := defaultRouteIn(t, client.Path); dev != "eth0" || gw != "10.230.1.1" {
		t.Fatalf("default route in client: dev %q via %q", dev, gw)
	}

	docroot := t.TempDir()
	if err := os.WriteFile(filepath.Join(docroot, "index.html"), []byte("hello from web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command(tools[0], "--net="+web.Path, bb, "httpd", "-f", "-p", "8080", "-h", docroot)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpd.Process.Signal(syscall.SIGTERM); httpd.Wait() })
	url := fmt.Sprintf("http://%s:8080/index.html", webEP.IP())
	testutil.Eventually(t, 5*time.Second, func() error {
		// busybox-static's wget crashes on -T: a context bounds it instead.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, tools[0], "--net="+client.Path, bb, "wget", "-q", "-O", "-", url).CombinedOutput()
		if err != nil {
			return fmt.Errorf("wget %s: %v: %s", url, err, out)
		}
		if string(out) != "hello from web\n" {
			return fmt.Errorf("wget %s printed %q", url, out)
		}
		return nil
	})

	// And the other way, with the in-process server: the peer address the
	// server sees is the client's own (no NAT inside a network).
	serve(t, client.Path, "client", 9000)
	mustAsk(t, web.Path, "tcp", hostPort(clientEP.IP(), 9000), "client "+webEP.IP().String())
	mustAsk(t, web.Path, "udp", hostPort(clientEP.IP(), 9000), "client "+webEP.IP().String())

	eps, err := e.m.Endpoints("c2c")
	if err != nil || len(eps) != 2 || eps[1].Owner != "service web" || !slices.Equal(eps[1].Aliases, []string{"web"}) {
		t.Fatalf("Endpoints(c2c) = %+v, %v", eps, err)
	}
}

// TestIsolationBetweenNetworks: a container cannot reach one on another
// network, though the host routes both subnets.
func TestIsolationBetweenNetworks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.network("front", "10.230.2.0/24")
	e.network("back", "10.230.3.0/24")
	a := e.sandbox("service a")
	b := e.sandbox("service b")
	c := e.sandbox("service c")
	e.attach(a, "front", AttachOptions{})
	bEP := e.attach(b, "back", AttachOptions{})
	cEP := e.attach(c, "back", AttachOptions{})
	serve(t, b.Path, "b", 9000)

	mustAsk(t, c.Path, "tcp", hostPort(bEP.IP(), 9000), "b "+cEP.IP().String())
	mustNotReach(t, a.Path, "tcp", hostPort(bEP.IP(), 9000))
	mustNotReach(t, a.Path, "udp", hostPort(bEP.IP(), 9000))
}

// outside makes a namespace that stands for the world beyond the host: a
// veth pair the test owns, 198.18.N.1/30 on the host, 198.18.N.2/30 inside,
// with a server on port 7000. It returns the server's address.
func (e *env) outside(n int) netip.Addr {
	t := e.t
	t.Helper()
	path := filepath.Join(t.TempDir(), "outside")
	if err := makeNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(path) })
	nsFile, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsFile.Close()
	name := e.testLink("out")
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.Flags = net.FlagUp
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(nsFile.Fd())}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(name) })
	host := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.1/30", n))
	peer := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.2/30", n))
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(host)}); err != nil {
		t.Fatal(err)
	}
	err = inNetns(path, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(peer)}); err != nil {
			return err
		}
		return h.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, path, "outside", 7000)
	return peer.Addr()
}

// TestOutboundNATAndInternalNetwork: a container on a normal network
// reaches a server beyond the host, masqueraded behind the host's address;
// one on an internal network has no route out, and even with a route forced
// in, its packets are dropped.
func TestOutboundNATAndInternalNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	world := e.outside(4)
	e.network("normal", "10.230.4.0/24")
	in := e.network("sealed", "10.230.5.0/24", func(o *CreateOptions) { o.Internal = true })
	open := e.sandbox("service open")
	sealed := e.sandbox("service sealed")
	e.attach(open, "normal", AttachOptions{})
	sealedEP := e.attach(sealed, "sealed", AttachOptions{})
	if sealedEP.Gateway.IsValid() {
		t.Fatalf("endpoint on an internal network has gateway %s", sealedEP.Gateway)
	}

	mustAsk(t, open.Path, "tcp", hostPort(world, 7000), "outside 198.18.4.1")
	mustAsk(t, open.Path, "udp", hostPort(world, 7000), "outside 198.18.4.1")

	if dev, _ := defaultRouteIn(t, sealed.Path); dev != "" {
		t.Fatalf("internal network gave a default route via %s", dev)
	}
	err := mustNotReach(t, sealed.Path, "tcp", hostPort(world, 7000))
	if !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("without a route: %v, want network unreachable", err)
	}
	// Force a route out, as a process with CAP_NET_ADMIN could: the
	// forward chain still drops.
	err = inNetns(sealed.Path, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		gw := in.Gateway.As4()
		return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw[:]})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mustNotReach(t, sealed.Path, "tcp", hostPort(world, 7000)); !isTimeout(err) {
		t.Fatalf("with a forced route: %v, want a timeout (dropped)", err)
	}
}

// TestStaticAddressesRangeAndAux: ipv4_address is honoured, dynamic
// addresses come from ip_range and skip aux_addresses, a taken address is
// refused.
func TestStaticAddressesRangeAndAux(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	n, err := e.m.Create(CreateOptions{Name: "planned", IPAM: []IPAMConfig{{
		Subnet: "10.230.6.0/24", Gateway: "10.230.6.254", IPRange: "10.230.6.128/29",
		AuxAddresses: map[string]string{"router": "10.230.6.129"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway.String() != "10.230.6.254" {
		t.Fatalf("gateway %s", n.Gateway)
	}
	static := e.sandbox("service static")
	ep := e.attach(static, "planned", AttachOptions{IPv4Address: netip.MustParseAddr("10.230.6.10"), MACAddress: "02:00:00:00:00:aa"})
	if got := linksIn(t, static.Path)["eth0"]; !slices.Equal(got, []string{"10.230.6.10/24"}) {
		t.Fatalf("eth0 in the sandbox has %v", got)
	}
	if ep.MAC != "02:00:00:00:00:aa" {
		t.Fatalf("mac %s", ep.MAC)
	}
	var got []string
	for i := 0; i < 3; i++ {
		sb := e.sandbox(fmt.Sprintf("service dyn-%d", i))
		got = append(got, e.attach(sb, "planned", AttachOptions{}).IP().String())
	}
	if want := []string{"10.230.6.128", "10.230.6.130", "10.230.6.131"}; !slices.Equal(got, want) {
		t.Fatalf("dynamic addresses %v, want %v", got, want)
	}
	other := e.sandbox("service other")
	for _, bad := range []string{"10.230.6.10", "10.230.6.254", "10.230.6.129"} {
		_, err := e.m.Attach(other.ID, "planned", AttachOptions{IPv4Address: netip.MustParseAddr(bad)})
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("static %s: %v, want a conflict", bad, err)
		}
	}
	if _, err := e.m.Attach(other.ID, "planned", AttachOptions{IPv4Address: netip.MustParseAddr("10.9.9.9")}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Error("static address outside the subnet accepted")
	}
	if l := linksIn(t, other.Path); len(l) != 1 {
		t.Fatalf("refused attachments left interfaces: %v", l)
	}
}

// TestThreeNetworksThreeInterfaces: one veth per attachment; the default
// route follows gw priority and moves when its network is detached.
func TestThreeNetworksThreeInterfaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.network("n1", "10.230.7.0/24")
	e.network("n2", "10.230.8.0/24")
	e.network("n3", "10.230.9.0/24", func(o *CreateOptions) { o.Internal = true })
	sb := e.sandbox("service multi")
	e.attach(sb, "n1", AttachOptions{})
	e.attach(sb, "n2", AttachOptions{GwPriority: 10})
	e.attach(sb, "n3", AttachOptions{GwPriority: 100}) // internal: never the gateway
	links := linksIn(t, sb.Path)
	want := map[string][]string{"lo": {"127.0.0.1/8"}, "eth0": {"10.230.7.2/24"}, "eth1": {"10.230.8.2/24"}, "eth2": {"10.230.9.2/24"}}
	for name, addrs := range want {
		if !slices.Equal(links[name], addrs) {
			t.Errorf("%s has %v, want %v", name, links[name], addrs)
		}
	}
	if len(links) != 4 {
		t.Errorf("interfaces %v", links)
	}
	if dev, gw := defaultRouteIn(t, sb.Path); dev != "eth1" || gw != "10.230.8.1" {
		t.Fatalf("default route dev %q via %q, want eth1 via 10.230.8.1", dev, gw)
	}
	got, _ := e.m.Sandbox(sb.ID)
	if got.GatewayEndpoint != got.Endpoints[1].ID {
		t.Fatalf("gateway endpoint %s, want n2's", got.GatewayEndpoint)
	}
	if err := e.m.Detach(sb.ID, "n2"); err != nil {
		t.Fatal(err)
	}
	if dev, gw := defaultRouteIn(t, sb.Path); dev != "eth0" || gw != "10.230.7.1" {
		t.Fatalf("after detaching n2: default route dev %q via %q", dev, gw)
	}
	if _, ok := linksIn(t, sb.Path)["eth1"]; ok {
		t.Fatal("eth1 still in the sandbox after detach")
	}
	// eth1 is free again for the next attachment.
	if ep := e.attach(sb, "n2", AttachOptions{}); ep.Interface != "eth1" {
		t.Fatalf("re-attached as %s", ep.Interface)
	}
}

// TestNetworkModeNone: a sandbox without endpoints has lo only, up.
func TestNetworkModeNone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.sandbox("service none")
	if !isNetns(sb.Path) {
		t.Fatalf("%s is not a network namespace", sb.Path)
	}
	links := linksIn(t, sb.Path)
	if len(links) != 1 || !slices.Equal(links["lo"], []string{"127.0.0.1/8"}) {
		t.Fatalf("links %v", links)
	}
	serve(t, sb.Path, "none", 9000)
	mustAsk(t, sb.Path, "tcp", "127.0.0.1:9000", "none 127.0.0.1")
}

// TestMTUAndDefaultPool: the MTU comes from driver_opts or the host's
// default route; a network without a subnet draws one from the pools,
// skipping what the host already routes.
func TestMTUAndDefaultPool(t *testing.T) {
	t.Parallel()
	pool := netip.MustParsePrefix("10.231.0.0/22")
	e := newEnv(t, Options{Pools: []ipam.Pool{{Base: pool, Size: 24}}})
	// A host route inside the pool's first subnet, on a link of the test.
	dummy := e.testLink("dum")
	la := netlink.NewLinkAttrs()
	la.Name = dummy
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(dummy) })
	link, _ := netlink.LinkByName(dummy)
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.231.0.200/25"))}); err != nil {
		t.Fatal(err)
	}
	n := e.network("pooled", "")
	if n.Subnet.String() != "10.231.1.0/24" || !n.PoolSubnet || n.Gateway.String() != "10.231.1.1" {
		t.Fatalf("pooled network got %s gw %s", n.Subnet, n.Gateway)
	}
	if n.MTU != hostMTU() {
		t.Fatalf("MTU %d, want the host's %d", n.MTU, hostMTU())
	}
	small := e.network("small", "", func(o *CreateOptions) { o.Options = map[string]string{OptionMTU: "1280"} })
	if small.Subnet.String() != "10.231.2.0/24" || small.MTU != 1280 {
		t.Fatalf("second pooled network %s mtu %d", small.Subnet, small.MTU)
	}
	sb := e.sandbox("service mtu")
	ep := e.attach(sb, "small", AttachOptions{})
	host, err := netlink.LinkByName(ep.HostInterface)
	if err != nil || host.Attrs().MTU != 1280 {
		t.Fatalf("host end %s: %v mtu %d", ep.HostInterface, err, host.Attrs().MTU)
	}
	_ = inNetns(sb.Path, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil || l.Attrs().MTU != 1280 {
			t.Errorf("eth0: %v mtu %d", err, l.Attrs().MTU)
		}
		return nil
	})
	// Same name, same configuration: the same network; another: a conflict.
	again := e.network("small", "", func(o *CreateOptions) { o.Options = map[string]string{OptionMTU: "1280"} })
	if again.ID != small.ID {
		t.Fatal("re-creating an identical network made a new one")
	}
	if _, err := e.m.Create(CreateOptions{Name: "small", Internal: true}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("re-creating with another configuration: %v", err)
	}
	if _, err := e.m.Create(CreateOptions{Name: "v6", EnableIPv6: true}); !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "IPv6") {
		t.Fatalf("enable_ipv6: %v", err)
	}
	if _, err := e.m.Create(CreateOptions{Name: "clash", IPAM: []IPAMConfig{{Subnet: "10.231.1.128/25"}}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("overlapping subnet: %v", err)
	}
	got, err := e.m.Get(small.ID[:8])
	if err != nil || got.Name != "small" {
		t.Fatalf("Get by id prefix: %v %v", got.Name, err)
	}
	if _, err := e.m.Get("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get of a missing (external) network: %v", err)
	}
	if err := e.m.Remove("small"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "service mtu") {
		t.Fatalf("removing a network in use: %v", err)
	}
}

// TestOpenTwiceRefused: one process at a time owns a state directory.
func TestOpenTwiceRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if _, err := Open(e.dir, Options{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second Open: %v", err)
	}
}

// TestParallelSandboxes: containers made, attached and deleted at once get
// distinct addresses and interfaces, and all of them work.
func TestParallelSandboxes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	n := e.network("crowd", "10.230.23.0/24")
	const count = 8
	eps := make([]Endpoint, count)
	sbs := make([]Sandbox, count)
	errc := make(chan error, count)
	for i := 0; i < count; i++ {
		go func() {
			sb, err := e.m.CreateSandbox(SandboxOptions{Owner: fmt.Sprintf("service crowd-%d", i)})
			if err == nil {
				sbs[i] = sb
				eps[i], err = e.m.Attach(sb.ID, "crowd", AttachOptions{})
			}
			errc <- err
		}()
	}
	for i := 0; i < count; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[netip.Addr]bool{}
	for _, ep := range eps {
		if seen[ep.IP()] || !n.Subnet.Contains(ep.IP()) {
			t.Fatalf("address %s given twice or outside %s", ep.IP(), n.Subnet)
		}
		seen[ep.IP()] = true
	}
	serve(t, sbs[0].Path, "first", 9000)
	for i := 1; i < count; i++ {
		mustAsk(t, sbs[i].Path, "tcp", hostPort(eps[0].IP(), 9000), "first "+eps[i].IP().String())
	}
	for i := 1; i < count; i++ {
		go func() { errc <- e.m.DeleteSandbox(sbs[i].ID) }()
	}
	for i := 1; i < count; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := e.m.Endpoints("crowd"); len(got) != 1 {
		t.Fatalf("endpoints left: %d", len(got))
	}
}
