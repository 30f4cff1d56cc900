package dnsresolver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// The tests in this file put "containers" (network namespaces with a veth
// into a bridge the test makes) in front of berth's listeners on the bridges'
// gateway addresses, and resolve from inside them with busybox nslookup, as a
// container would.

// testBridge is a Linux bridge with the gateway address of its subnet.
type testBridge struct {
	name string
	sub  netip.Prefix
	gw   netip.Addr
	link netlink.Link
}

var subnetMu sync.Mutex // serialises picking subnets within this test binary

// freeSubnet picks a /24 in 10.200.0.0/13 that no address or route of the
// host overlaps.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	subnetMu.Lock()
	defer subnetMu.Unlock()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var taken []netip.Prefix
	for _, a := range addrs {
		if p, ok := netipPrefix(a.IPNet); ok {
			taken = append(taken, p)
		}
	}
	for _, r := range routes {
		if p, ok := netipPrefix(r.Dst); ok && p.Bits() > 0 {
			taken = append(taken, p)
		}
	}
	for range 1000 {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(8)), byte(rand.IntN(256)), 0}), 24)
		if !slices.ContainsFunc(taken, cand.Overlaps) {
			return cand
		}
	}
	t.Fatal("no free /24 in 10.200.0.0/13")
	return netip.Prefix{}
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// newBridge makes bridge <prefix>br<id>, up, with the subnet's .1.
func newBridge(t *testing.T, root, id string) *testBridge {
	t.Helper()
	sub := freeSubnet(t)
	b := &testBridge{name: rootid.LinkPrefix(root) + "br" + id, sub: sub, gw: host(sub, 1)}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.name}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s: %v", b.name, err)
	}
	t.Cleanup(func() {
		if err := netlink.LinkDel(br); err != nil {
			t.Errorf("delete bridge %s: %v", b.name, err)
		}
	})
	link, err := netlink.LinkByName(b.name)
	if err != nil {
		t.Fatal(err)
	}
	b.link = link
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: b.gw.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	return b
}

// testContainer is a network namespace with one interface on a bridge.
type testContainer struct {
	ns string // bind-mounted namespace file, for nsenter --net
	ip netip.Addr
}

// newContainer makes a network namespace (bind-mounted under root, so the
// leak check sees it if it stays), with eth0 at .hostPart of the bridge's
// subnet and a default route through the gateway.
func newContainer(t *testing.T, root string, b *testBridge, id string, hostPart byte) *testContainer {
	t.Helper()
	c := &testContainer{ns: filepath.Join(root, "netns-"+id), ip: host(b.sub, hostPart)}
	if err := os.WriteFile(c.ns, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mountNewNetns(c.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(c.ns, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", c.ns, err)
		}
	})
	c.attach(t, root, b, id, "eth0", c.ip, true)
	return c
}

// attach gives the container an interface called ifname on the bridge, with
// address ip, and the default route through the bridge's gateway if asked.
func (c *testContainer) attach(t *testing.T, root string, b *testBridge, id, ifname string, ip netip.Addr, defaultRoute bool) {
	t.Helper()
	nsh, err := netns.GetFromPath(c.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()

	hostSide := rootid.LinkPrefix(root) + "h" + id
	peer := rootid.LinkPrefix(root) + "p" + id
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostSide, MasterIndex: b.link.Attrs().Index},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(nsh),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", hostSide, err)
	}
	t.Cleanup(func() {
		// Deleting one end deletes the pair; the namespace may be gone already.
		if err := netlink.LinkDel(veth); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
			t.Errorf("delete veth %s: %v", hostSide, err)
		}
	})
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth, err := h.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetName(eth, ifname); err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	if err := h.AddrAdd(eth, addr); err != nil {
		t.Fatal(err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []netlink.Link{lo, eth} {
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	if defaultRoute {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: b.gw.AsSlice()}); err != nil {
			t.Fatal(err)
		}
	}
}

// mountNewNetns creates a network namespace and bind-mounts it on path, on a
// thread of its own that returns to the original namespace before it is
// handed back to the runtime (and dies, if that fails).
func mountNewNetns(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the thread is still in its namespace: unlocking is fine
		}
		defer orig.Close()
		created, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		created.Close()
		err = unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, serr)
			return // locked thread exits with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// nslookup runs busybox nslookup inside the container against server and
// returns its output and whether it exited 0.
func (c *testContainer) nslookup(t *testing.T, server netip.Addr, args ...string) (string, bool) {
	t.Helper()
	bb := testutil.Busybox(t)
	argv := append([]string{"--net=" + c.ns, bb, "nslookup"}, args...)
	argv = append(argv, server.String())
	out, err := exec.Command("nsenter", argv...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("nsenter %v: %v\n%s", argv, err, out)
	}
	return string(out), err == nil
}

var answerLine = regexp.MustCompile(`(?m)^Address: ([0-9a-f.:]+)$`)

// answered returns the addresses in nslookup's answer section, in order.
func answered(out string) []string {
	var got []string
	for _, m := range answerLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	return got
}

func TestResolveFromNetworkNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "nsenter")
	testutil.Busybox(t)
	t.Parallel()
	root := testutil.StateRoot(t)

	up := startUpstream(t, answerA("upstream.test", "192.0.2.53"))
	s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.Addr}})
	a := newBridge(t, root, "a")
	b := newBridge(t, root, "b")
	for name, br := range map[string]*testBridge{"neta": a, "netb": b} {
		if err := s.AddNetwork(Network{Name: name, Gateway: br.gw, Subnet: br.sub}); err != nil {
			t.Fatal(err)
		}
	}
	client := newContainer(t, root, a, "1", 50)   // links pg -> db
	stranger := newContainer(t, root, a, "2", 51) // no links
	outsider := newContainer(t, root, b, "3", 50) // on the other network
	proxy := newContainer(t, root, a, "4", 60)    // on both networks
	proxy.attach(t, root, b, "5", "eth1", host(b.sub, 60), false)

	web := webReplicas(a.sub, 3)
	db := Endpoint{Container: "proj-db-1", IP: host(a.sub, 20), Service: "db", Aliases: []string{"database"}}
	onA := append(slices.Clone(web), db,
		Endpoint{Container: "proj-client-1", IP: client.ip, Service: "client", Links: []Link{{Alias: "pg", Target: "db"}}},
		Endpoint{Container: "proj-stranger-1", IP: stranger.ip, Service: "stranger"},
		Endpoint{Container: "proj-proxy-1", IP: proxy.ip, Service: "proxy"})
	if err := s.SetEndpoints("neta", onA); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEndpoints("netb", []Endpoint{
		{Container: "proj-outsider-1", IP: outsider.ip, Service: "outsider"},
		{Container: "proj-proxy-1", IP: host(b.sub, 60), Service: "proxy"},
	}); err != nil {
		t.Fatal(err)
	}
	webIPs := []string{web[0].IP.String(), web[1].IP.String(), web[2].IP.String()}

	t.Run("service name gives every replica", func(t *testing.T) {
		out, ok := client.nslookup(t, a.gw, "-type=a", "web")
		if got := answered(out); !ok || !slices.Equal(sorted(got), webIPs) {
			t.Fatalf("web: %v, want %v\n%s", got, webIPs, out)
		}
	})
	t.Run("round robin over three replicas", func(t *testing.T) {
		firsts := map[string]bool{}
		for range 3 {
			out, _ := client.nslookup(t, a.gw, "-type=a", "web")
			got := answered(out)
			if len(got) != 3 {
				t.Fatalf("web: %v\n%s", got, out)
			}
			firsts[got[0]] = true
		}
		if len(firsts) != 3 {
			t.Errorf("first address over three lookups: %v, want each replica once", firsts)
		}
	})
	t.Run("network alias and container name", func(t *testing.T) {
		for _, name := range []string{"database", "proj-db-1", "db.neta"} {
			out, ok := stranger.nslookup(t, a.gw, "-type=a", name)
			if got := answered(out); !ok || !slices.Equal(got, []string{db.IP.String()}) {
				t.Errorf("%s: %v, want %s\n%s", name, got, db.IP, out)
			}
		}
	})
	t.Run("link alias only for the linking container", func(t *testing.T) {
		out, ok := client.nslookup(t, a.gw, "-type=a", "pg")
		if got := answered(out); !ok || !slices.Equal(got, []string{db.IP.String()}) {
			t.Errorf("pg from the linking container: %v, want %s\n%s", got, db.IP, out)
		}
		out, ok = stranger.nslookup(t, a.gw, "-type=a", "pg")
		if ok || len(answered(out)) != 0 || !strings.Contains(out, "NXDOMAIN") {
			t.Errorf("pg from another container resolved or failed oddly:\n%s", out)
		}
	})
	t.Run("networks are isolated", func(t *testing.T) {
		out, ok := outsider.nslookup(t, b.gw, "-type=a", "web")
		if ok || len(answered(out)) != 0 || !strings.Contains(out, "NXDOMAIN") {
			t.Errorf("web from the other network resolved:\n%s", out)
		}
		out, ok = client.nslookup(t, a.gw, "-type=a", "proj-outsider-1")
		if ok || len(answered(out)) != 0 {
			t.Errorf("the other network's container resolved on this one:\n%s", out)
		}
		out, ok = outsider.nslookup(t, b.gw, "-type=a", "outsider")
		if got := answered(out); !ok || !slices.Equal(got, []string{outsider.ip.String()}) {
			t.Errorf("outsider on its own network: %v\n%s", got, out)
		}
	})
	t.Run("a container on both networks resolves both", func(t *testing.T) {
		out, ok := proxy.nslookup(t, a.gw, "-type=a", "outsider")
		if got := answered(out); !ok || !slices.Equal(got, []string{outsider.ip.String()}) {
			t.Errorf("outsider (network b) from the proxy through a's listener: %v\n%s", got, out)
		}
		out, ok = proxy.nslookup(t, a.gw, "-type=a", "database")
		if got := answered(out); !ok || !slices.Equal(got, []string{db.IP.String()}) {
			t.Errorf("database (network a) from the proxy: %v\n%s", got, out)
		}
	})
	t.Run("sources outside the network are refused", func(t *testing.T) {
		// The outsider reaches network a's gateway through the host, which
		// routes between its bridges; berth must not serve it there.
		out, ok := outsider.nslookup(t, a.gw, "-type=a", "web")
		if ok || len(answered(out)) != 0 || !strings.Contains(out, "REFUSED") {
			t.Errorf("network a's listener answered a source of network b:\n%s", out)
		}
	})
	t.Run("PTR", func(t *testing.T) {
		out, ok := client.nslookup(t, a.gw, web[1].IP.String())
		if !ok || !strings.Contains(out, "name = proj-web-2.neta") {
			t.Errorf("reverse of %s:\n%s", web[1].IP, out)
		}
	})
	t.Run("AAAA of an IPv4 name is empty", func(t *testing.T) {
		out, _ := client.nslookup(t, a.gw, "-type=aaaa", "web")
		if len(answered(out)) != 0 || strings.Contains(out, "NXDOMAIN") {
			t.Errorf("AAAA web:\n%s", out)
		}
		// Without -type, busybox asks A and AAAA: the empty AAAA must not
		// spoil the A answers.
		out, ok := client.nslookup(t, a.gw, "web")
		if got := answered(out); !ok || !slices.Equal(sorted(got), webIPs) {
			t.Errorf("A+AAAA web: %v\n%s", got, out)
		}
	})
	t.Run("upstream forwarding", func(t *testing.T) {
		out, ok := client.nslookup(t, a.gw, "-type=a", "upstream.test")
		if got := answered(out); !ok || !slices.Equal(got, []string{"192.0.2.53"}) {
			t.Errorf("upstream.test: %v\n%s", got, out)
		}
	})
	t.Run("records follow scale down and up", func(t *testing.T) {
		for _, replicas := range []int{1, 3, 2} {
			eps := append(webReplicas(a.sub, replicas), onA[3:]...)
			if err := s.SetEndpoints("neta", eps); err != nil {
				t.Fatal(err)
			}
			out, _ := client.nslookup(t, a.gw, "-type=a", "web")
			if got := answered(out); len(got) != replicas {
				t.Errorf("scaled to %d: %v\n%s", replicas, got, out)
			}
		}
	})
}
