package network

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// The state root's nftables table (family inet, rootid.NFTable(root)):
//
//	chain raw-prerouting   filter hook prerouting priority raw (-300)
//	    iifname BR ip daddr 127.0.0.0/8 drop         guard for route_localnet (CVE-2020-8558)
//	chain nat-prerouting   nat hook prerouting priority dstnat (-100)
//	    iifname BR ip daddr GW tcp|udp dport 53 accept   the DNS server on the gateway is never DNATed
//	    fib daddr type local jump published
//	chain nat-output       nat hook output priority dstnat (-100)
//	    fib daddr type local jump published            the host's own connections, 127.0.0.1 included
//	chain published
//	    [ip daddr HOSTIP] tcp|udp dport HP dnat ip to CIP:CP
//	chain nat-postrouting  nat hook postrouting priority srcnat (100)
//	    ip saddr SUBNET oifname != BR masquerade       outbound NAT (not on internal networks)
//	    oifname BR ct status dnat ip saddr 127.0.0.0/8 masquerade   published port reached on the host's loopback
//	    oifname BR ip saddr SUBNET ct status dnat masquerade         hairpin: a container through the host's address
//	chain forward          filter hook forward priority filter (0)
//	    jump isolate-in
//	    jump isolate-out
//	chain isolate-in       traffic into a bridge: ends here (accept or drop) if it goes to one of ours
//	    oifname BR iifname BR accept (drop if enable_icc is false)
//	    oifname BR ct state established,related accept
//	    oifname BR ct status dnat accept
//	    oifname BR drop                                isolation from other networks and from outside
//	chain isolate-out
//	    iifname BR drop                                internal networks: no way out
//
// br_netfilter (bridge-nf-call-iptables=1) sends bridged frames through the
// ip hooks too, with the bridge as both iif and oif: the first isolate-in
// rule is what lets containers of one network talk.
//
// An accept in one base chain does not stop another base chain on the same
// hook from dropping. Docker (iptables-nft) sets its ip filter FORWARD chain's
// policy to drop, so berth inserts "iifname BR accept" (except towards
// Docker's bridges) and "oifname BR accept" at the top of every foreign
// forward chain whose policy is drop, tagged with
// a comment naming the state root, and removes exactly those when the network
// goes. Isolation stays in berth's own chain, which still drops. A foreign
// input chain whose policy is drop (ufw, a hand-made firewall) gets one hole
// per network: the DNS server on its gateway. iptables-legacy keeps its rules
// outside nftables where berth cannot reach them; see the package's README
// for that case.

const (
	chainRaw        = "raw-prerouting"
	chainNATPre     = "nat-prerouting"
	chainNATOut     = "nat-output"
	chainPublished  = "published"
	chainNATPost    = "nat-postrouting"
	chainForward    = "forward"
	chainIsolateIn  = "isolate-in"
	chainIsolateOut = "isolate-out"
)

// forwardRule is a port forwarding as the kernel gets it.
type forwardRule struct {
	port   PublishedPort
	target netip.Addr
}

// firewall is what the nftables rules are made from, copied out of the
// records under the manager's lock.
type firewall struct {
	networks []Network
	forwards []forwardRule
}

// firewallLocked gathers the firewall's inputs; m.mu is held.
func (m *Manager) firewallLocked() firewall {
	var fw firewall
	for _, n := range m.networks {
		fw.networks = append(fw.networks, n.Network)
	}
	slices.SortFunc(fw.networks, func(a, b Network) int { return a.Created.Compare(b.Created) })
	for _, sb := range m.sandboxes {
		gw := gatewayEndpoint(sb.rec.Endpoints)
		if gw == nil {
			continue
		}
		for _, p := range sb.rec.Ports {
			fw.forwards = append(fw.forwards, forwardRule{port: p, target: gw.IP()})
		}
	}
	slices.SortFunc(fw.forwards, func(a, b forwardRule) int {
		if a.port.HostPort != b.port.HostPort {
			return int(a.port.HostPort) - int(b.port.HostPort)
		}
		return cmp.Compare(a.port.Protocol, b.port.Protocol)
	})
	return fw
}

// syncFirewall makes the kernel's rules what the records say, in one
// nftables transaction; m.mu is held.
func (m *Manager) syncFirewall() error {
	err := m.writeFirewall()
	if err != nil {
		// Another program (another state root, Docker) may have changed a
		// foreign chain between our listing and our batch, which then
		// fails whole: list again and retry once.
		err = m.writeFirewall()
	}
	return err
}

func (m *Manager) writeFirewall() error {
	fw := m.firewallLocked()
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := m.syncForeignChains(conn, fw.networks); err != nil {
		return err
	}
	if len(fw.networks) == 0 {
		if exists, err := m.tableExists(conn); err != nil {
			return err
		} else if exists {
			conn.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: m.table})
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("nftables: remove table %s: %w", m.table, err)
		}
		return nil
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: m.table})
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		accept := nftables.ChainPolicyAccept
		return conn.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	raw := base(chainRaw, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	natPre := base(chainNATPre, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	natOut := base(chainNATOut, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	natPost := base(chainNATPost, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := base(chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	published := conn.AddChain(&nftables.Chain{Name: chainPublished, Table: t})
	isoIn := conn.AddChain(&nftables.Chain{Name: chainIsolateIn, Table: t})
	isoOut := conn.AddChain(&nftables.Chain{Name: chainIsolateOut, Table: t})
	conn.FlushTable(t)
	add := func(c *nftables.Chain, parts ...[]expr.Any) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: rule(parts...)})
	}

	add(natPre, fibLocal(false), jump(chainPublished))
	add(natOut, fibLocal(false), jump(chainPublished))
	add(fwd, jump(chainIsolateIn))
	add(fwd, jump(chainIsolateOut))
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, n := range fw.networks {
		br := n.Bridge
		if !n.Internal {
			add(raw, iifname(br), daddr(loopback), counter(), verdict(expr.VerdictDrop))
			for _, proto := range []string{"udp", "tcp"} {
				// Inserted before the jump: the rule set above was added
				// first, so Insert puts these at the top of nat-prerouting.
				conn.InsertRule(&nftables.Rule{Table: t, Chain: natPre,
					Exprs: rule(iifname(br), daddrIs(n.Gateway), l4proto(proto), dport(53), verdict(expr.VerdictAccept))})
			}
			if n.Masquerade {
				add(natPost, saddr(n.Subnet), oifnameNot(br), masquerade())
			}
			// Only loopback sources: the container cannot answer
			// 127.0.0.1, but it answers any other address of the host
			// through its gateway, which is the host, and un-NATing one
			// translation per packet instead of two is cheaper. The
			// container sees the host's real address, as it sees an
			// outside client's.
			add(natPost, oifname(br), ctDNAT(), saddr(loopback), masquerade())
			add(natPost, oifname(br), saddr(n.Subnet), ctDNAT(), masquerade())
		}
		icc := expr.VerdictAccept
		if !n.ICC {
			icc = expr.VerdictDrop
		}
		add(isoIn, oifname(br), iifname(br), verdict(icc))
		add(isoIn, oifname(br), ctEstablished(), verdict(expr.VerdictAccept))
		if !n.Internal {
			add(isoIn, oifname(br), ctDNAT(), verdict(expr.VerdictAccept))
		}
		add(isoIn, oifname(br), counter(), verdict(expr.VerdictDrop))
		if n.Internal {
			add(isoOut, iifname(br), counter(), verdict(expr.VerdictDrop))
		}
	}
	for _, f := range fw.forwards {
		parts := [][]expr.Any{}
		if f.port.HostIP.IsValid() {
			parts = append(parts, daddrIs(f.port.HostIP))
		} else {
			parts = append(parts, ipv4())
		}
		parts = append(parts, l4proto(f.port.Protocol), dport(f.port.HostPort), dnatTo(f.target, f.port.ContainerPort))
		add(published, parts...)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: write table %s: %w", m.table, err)
	}
	return nil
}

func (m *Manager) tableExists(conn *nftables.Conn) (bool, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == m.table {
			return true, nil
		}
	}
	return false, nil
}

// tag is the comment on berth's rules in chains it does not own.
func (m *Manager) tag() string { return m.table }

// syncForeignChains queues, on conn, the removal of this state root's rules
// from foreign chains and the insertion of the ones networks need, in the
// base chains on the forward and input hooks whose policy is drop:
//
//   - forward: oifname BR accept, and iifname BR accept unless the packet
//     goes to one of Docker's bridges (docker0, br-*), whose containers
//     Docker's rules protect (berth's own chain keeps isolation);
//   - input: iifname BR ip daddr GW udp|tcp dport 53 accept, only the DNS
//     server on the gateway; the host's other services stay as the host's
//     firewall wants them.
//
// conn's batch is flushed by the caller.
func (m *Manager) syncForeignChains(conn *nftables.Conn, networks []Network) error {
	chains, err := conn.ListChains()
	if err != nil {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	tag := m.tag()
	for _, c := range chains {
		if c.Hooknum == nil || c.Type != nftables.ChainTypeFilter || c.Table == nil {
			continue
		}
		forward := *c.Hooknum == *nftables.ChainHookForward
		if !forward && *c.Hooknum != *nftables.ChainHookInput {
			continue
		}
		if c.Table.Family != nftables.TableFamilyIPv4 && c.Table.Family != nftables.TableFamilyINet {
			continue
		}
		if c.Table.Family == nftables.TableFamilyINet && c.Table.Name == m.table {
			continue
		}
		handles, err := taggedRules(c.Table, c.Name, tag)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the chain went away meanwhile
			}
			return err
		}
		for _, h := range handles {
			if err := conn.DelRule(&nftables.Rule{Table: c.Table, Chain: c, Handle: h}); err != nil {
				return err
			}
		}
		if c.Policy == nil || *c.Policy != nftables.ChainPolicyDrop {
			continue
		}
		ud := userdata.AppendString(nil, userdata.TypeComment, tag)
		insert := func(parts ...[]expr.Any) {
			// At the top, before the foreign chain's own rules (Docker's
			// jump to DOCKER-USER included).
			conn.InsertRule(&nftables.Rule{Table: c.Table, Chain: c, UserData: ud, Exprs: rule(parts...)})
		}
		for _, n := range networks {
			if forward {
				insert(oifname(n.Bridge), verdict(expr.VerdictAccept))
				// Not towards Docker's bridges: Docker's own rules let
				// in only answers and published ports there, and an
				// accept here would open its containers to berth's.
				insert(iifname(n.Bridge), oifnameNot("docker0"), oifnameNotPrefix("br-"), verdict(expr.VerdictAccept))
				continue
			}
			for _, proto := range []string{"udp", "tcp"} {
				insert(iifname(n.Bridge), daddrIs(n.Gateway), l4proto(proto), dport(53), verdict(expr.VerdictAccept))
			}
		}
	}
	return nil
}
