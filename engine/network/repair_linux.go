package network

import (
	"errors"
	"os"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/engine/network/ipam"
)

// restore loads the records and makes the kernel agree with them:
//
//   - a recorded bridge or veth that is missing is made again (a container
//     whose namespace is alive gets its interface back, same address and
//     MAC);
//   - a recorded sandbox whose namespace is gone (the host restarted) is
//     forgotten, its addresses and ports freed;
//   - a link named with this root's prefix, or a namespace file, that no
//     record mentions was left by a crash between making it and recording
//     it, and is deleted;
//   - the nftables table is rebuilt from the records and the published
//     ports are bound again.
func (m *Manager) restore() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	nets, err := loadRecords[Network](m.networksDir())
	if err != nil {
		return err
	}
	sbs, err := loadRecords[Sandbox](m.sandboxesDir())
	if err != nil {
		return err
	}
	var errs []error
	out := false
	for _, n := range nets {
		cfg := ipam.Config{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange, AuxAddresses: n.AuxAddresses}
		st := &netState{Network: n, space: ipam.NewSpace(cfg)}
		m.networks[n.ID] = st
		created, err := ensureBridge(&st.Network)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if created {
			m.repaired("network %s: bridge %s was missing; made it again", n.Name, n.Bridge)
		}
		out = out || !n.Internal
	}
	for _, rec := range sbs {
		m.restoreSandbox(rec)
	}
	m.deleteOrphans()
	if out {
		if err := enableForwarding(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.syncFirewall(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// restoreSandbox takes a recorded sandbox back; m.mu is held.
func (m *Manager) restoreSandbox(rec Sandbox) {
	if !isNetns(rec.Path) {
		for _, ep := range rec.Endpoints {
			_ = deleteLink(ep.HostInterface)
		}
		_ = removeNetns(rec.Path)
		_ = removeRecord(m.sandboxPath(rec.ID))
		m.repaired("sandbox of %s: its network namespace is gone (was the host restarted?); forgot it, its %d endpoints and %d published ports",
			rec.Owner, len(rec.Endpoints), len(rec.Ports))
		return
	}
	before := gatewayCopy(rec.Endpoints)
	changed, remade := false, false
	keep := make([]Endpoint, 0, len(rec.Endpoints))
	for _, ep := range rec.Endpoints {
		n, ok := m.networks[ep.NetworkID]
		if !ok {
			_ = deleteLink(ep.HostInterface)
			m.repaired("sandbox of %s: network %s of endpoint %s is gone; removed the endpoint", rec.Owner, ep.NetworkName, ep.Interface)
			changed = true
			continue
		}
		if err := n.space.Claim(ep.IP(), rec.Owner); err != nil {
			_ = deleteLink(ep.HostInterface)
			m.repaired("sandbox of %s: endpoint %s on %s: %v; removed the endpoint", rec.Owner, ep.Interface, n.Name, err)
			changed = true
			continue
		}
		if _, err := netlink.LinkByName(ep.HostInterface); err == nil {
			if err := repairVeth(ep.HostInterface, n.Bridge); err != nil {
				m.repaired("sandbox of %s: endpoint %s on %s: re-plugging %s: %v", rec.Owner, ep.Interface, n.Name, ep.HostInterface, err)
			}
		} else if err := makeVeth(rec.Path, n.Bridge, n.MTU, &ep); err != nil {
			_ = deleteLink(ep.HostInterface)
			n.space.Release(ep.IP())
			m.repaired("sandbox of %s: endpoint %s on %s was missing and could not be made again (%v); removed it", rec.Owner, ep.Interface, n.Name, err)
			changed = true
			continue
		} else {
			m.repaired("sandbox of %s: endpoint %s on %s (%s) was missing; made it again", rec.Owner, ep.Interface, n.Name, ep.Address)
			remade = true
		}
		keep = append(keep, ep)
	}
	rec.Endpoints = keep
	sb := &sbState{rec: rec}
	m.sandboxes[rec.ID] = sb
	if changed {
		if err := m.saveSandbox(&sb.rec); err != nil {
			m.repaired("sandbox of %s: saving its repaired record: %v", rec.Owner, err)
		}
	}
	if after := gatewayEndpoint(keep); remade || !sameEndpoint(before, after) {
		if err := setDefaultRoute(rec.Path, after); err != nil {
			m.repaired("sandbox of %s: default route: %v", rec.Owner, err)
		}
	}
	for _, p := range rec.Ports {
		c, _, err := bindHostPort(p.Protocol, p.HostIP, p.HostPort)
		if err != nil {
			m.repaired("sandbox of %s: published port %s is forwarded but its host port could not be held again: %v", rec.Owner, p, err)
			continue
		}
		m.held[portKey(p)] = c
	}
}

// deleteOrphans deletes the links and namespace files of this root that no
// record mentions; m.mu is held.
func (m *Manager) deleteOrphans() {
	known := map[string]bool{}
	for _, n := range m.networks {
		known[n.Bridge] = true
	}
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			known[ep.HostInterface] = true
		}
	}
	links, err := whole(netlink.LinkList)
	if err == nil {
		for _, l := range links {
			name := l.Attrs().Name
			if !strings.HasPrefix(name, m.prefix) || known[name] {
				continue
			}
			if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
				m.repaired("could not delete %s %s, which no record mentions: %v", l.Type(), name, err)
				continue
			}
			m.repaired("deleted %s %s, which no record mentions (a crash before it was recorded)", l.Type(), name)
		}
	}
	entries, err := os.ReadDir(m.netnsDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if _, ok := m.sandboxes[e.Name()]; ok {
			continue
		}
		if err := removeNetns(m.nsPath(e.Name())); err != nil {
			m.repaired("could not remove network namespace %s, which no record mentions: %v", e.Name(), err)
			continue
		}
		m.repaired("removed network namespace %s, which no record mentions (a crash before it was recorded)", e.Name())
	}
}
