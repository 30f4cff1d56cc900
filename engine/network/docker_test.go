package network

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/rootid"
)

// dockerDropChain makes what Docker (iptables-nft) makes on its start: an ip
// filter FORWARD chain whose policy is drop; and what ufw makes: an INPUT
// chain whose policy is drop, here for traffic from the given bridges only
// (the host's own services must stay reachable while the test runs). It is
// removed at the test's end.
func dockerDropChain(t *testing.T, bridges ...string) *nftables.Table {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	name := "filter"
	if tables, _ := conn.ListTablesOfFamily(nftables.TableFamilyIPv4); tables != nil {
		for _, tb := range tables {
			if tb.Name == "filter" {
				name = "berth-test-docker" // a real one is there: leave it be
			}
		}
	}
	tb := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: name})
	drop := nftables.ChainPolicyDrop
	conn.AddChain(&nftables.Chain{Name: "FORWARD", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	input := conn.AddChain(&nftables.Chain{Name: "INPUT", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	var others []expr.Any
	for _, br := range bridges {
		others = append(others, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(br)})
	}
	conn.AddRule(&nftables.Rule{Table: tb, Chain: input, Exprs: append(others, &expr.Verdict{Kind: expr.VerdictAccept})})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.DelTable(tb)
		if err := conn.Flush(); err != nil {
			t.Errorf("remove table ip %s: %v", name, err)
		}
	})
	return tb
}

// TestCoexistsWithDockerForwardDrop: with an ip filter FORWARD chain whose
// policy is drop (Docker's), containers still reach each other (bridged
// traffic goes through that chain too, with br_netfilter) and the world
// beyond the host, once berth has inserted its accept rules; removing the
// network removes exactly those rules. Not parallel: the chain drops every
// forwarded packet of the host, other tests' included.
func TestCoexistsWithDockerForwardDrop(t *testing.T) {
	e := newEnv(t, Options{})
	world := e.outside(18)
	dock := e.network("dock", "10.230.18.0/24")
	other := e.network("other", "10.230.19.0/24")
	a := e.sandbox("service a")
	b := e.sandbox("service b")
	c := e.sandbox("service c")
	aEP := e.attach(a, "dock", AttachOptions{})
	bEP := e.attach(b, "dock", AttachOptions{})
	e.attach(c, "other", AttachOptions{})
	serve(t, b.Path, "b", 9000)

	// On the host, on the gateway: the DNS server's port and another one.
	serve(t, "", "dns", 53, dock.Gateway)
	serve(t, "", "private", 9053, dock.Gateway)
	tb := dockerDropChain(t, dock.Bridge, other.Bridge)
	// Docker started after berth: its policy cuts forwarding...
	mustNotReach(t, a.Path, "tcp", hostPort(world, 7000))
	if brNetfilter() {
		mustNotReach(t, a.Path, "tcp", hostPort(bEP.IP(), 9000))
	}
	// ...until berth resyncs (the daemon does at start and periodically).
	if err := e.m.Resync(); err != nil {
		t.Fatal(err)
	}
	mustAsk(t, a.Path, "tcp", hostPort(bEP.IP(), 9000), "b "+aEP.IP().String())
	mustAsk(t, a.Path, "tcp", hostPort(world, 7000), "outside 198.18.18.1")
	mustAsk(t, a.Path, "udp", hostPort(world, 7000), "outside 198.18.18.1")
	// Isolation is berth's own chain's job, and it still holds.
	mustNotReach(t, c.Path, "tcp", hostPort(bEP.IP(), 9000))
	// A container on a Docker bridge stays out of reach: Docker's own rules
	// protect it, and berth's accept does not cover traffic towards it.
	dockerCtr := e.dockerContainer("br-"+rootid.Of(e.root), 24)
	mustAsk(t, "", "tcp", hostPort(dockerCtr, 9000), "docker 10.230.24.1")
	mustNotReach(t, a.Path, "tcp", hostPort(dockerCtr, 9000))
	// The host's input policy lets the DNS server be reached, nothing else.
	mustAsk(t, a.Path, "udp", hostPort(dock.Gateway, 53), "dns "+aEP.IP().String())
	mustAsk(t, a.Path, "tcp", hostPort(dock.Gateway, 53), "dns "+aEP.IP().String())
	mustNotReach(t, a.Path, "tcp", hostPort(dock.Gateway, 9053))
	if handles, err := taggedRules(tb, "INPUT", e.m.tag()); err != nil || len(handles) != 4 {
		t.Fatalf("berth's rules in %s INPUT: %v, %v; want 4 (udp and tcp for 2 bridges)", tb.Name, handles, err)
	}

	handles, err := taggedRules(tb, "FORWARD", e.m.tag())
	if err != nil || len(handles) != 4 {
		t.Fatalf("berth's rules in %s FORWARD: %v, %v; want 4 (in and out for 2 bridges)", tb.Name, handles, err)
	}
	// A network made while the chain exists gets its rules at once.
	e.network("late", "10.230.22.0/24")
	if handles, _ := taggedRules(tb, "FORWARD", e.m.tag()); len(handles) != 6 {
		t.Fatalf("after a third network: %d rules, want 6", len(handles))
	}
	tag := e.m.tag()
	e.teardown()
	for _, chain := range []string{"FORWARD", "INPUT"} {
		if handles, err := taggedRules(tb, chain, tag); err != nil || len(handles) != 0 {
			t.Fatalf("after teardown, berth's rules in %s %s: %v, %v", tb.Name, chain, handles, err)
		}
	}
}

// dockerContainer makes a bridge named as Docker names its own (the test
// removes it), 10.230.N.1/24, with a namespace on it at 10.230.N.2 serving
// port 9000, and returns that address.
func (e *env) dockerContainer(bridge string, n int) netip.Addr {
	t := e.t
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = bridge
	br := &netlink.Bridge{LinkAttrs: la}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(bridge) })
	gw := netip.MustParsePrefix(fmt.Sprintf("10.230.%d.1/24", n))
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw)}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "docker")
	if err := makeNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(path) })
	ep := &Endpoint{HostInterface: e.testLink("dkr"), Interface: "eth0",
		Address: netip.MustParsePrefix(fmt.Sprintf("10.230.%d.2/24", n)), MAC: "02:00:00:00:00:01"}
	if err := makeVeth(path, bridge, 1500, ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(ep.HostInterface) })
	ep.Gateway = gw.Addr()
	if err := setDefaultRoute(path, ep); err != nil { // so that it could answer
		t.Fatal(err)
	}
	serve(t, path, "docker", 9000)
	return ep.IP()
}

func brNetfilter() bool {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
