package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureBridge makes n's bridge, or repairs it: present, with its address,
// up, with route_localnet. It reports whether it had to create the link.
func ensureBridge(n *Network) (created bool, err error) {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil && !isNotFound(err) {
		return false, fmt.Errorf("network %s: bridge %s: %w", n.Name, n.Bridge, err)
	}
	if link != nil {
		if link.Type() != "bridge" {
			return false, fmt.Errorf("network %s: %s exists and is a %s, not a bridge", n.Name, n.Bridge, link.Type())
		}
	} else {
		la := netlink.NewLinkAttrs()
		la.Name = n.Bridge
		la.MTU = n.MTU
		// A fixed MAC, derived from the gateway: otherwise the bridge takes
		// the lowest MAC of its ports and changes it as containers come and
		// go, and every container's ARP entry for the gateway goes stale.
		la.HardwareAddr = macFor(n.Gateway)
		br := &netlink.Bridge{LinkAttrs: la}
		if err := netlink.LinkAdd(br); err != nil {
			return false, fmt.Errorf("network %s: create bridge %s: %w", n.Name, n.Bridge, err)
		}
		created = true
		link = br
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return created, fmt.Errorf("network %s: address %s on %s: %w", n.Name, addr.IPNet, n.Bridge, err)
	}
	if !n.Internal {
		// 127.0.0.1 as a source or (after un-NAT) destination on the
		// bridge: needed to publish ports on the host's loopback. The raw
		// chain drops what arrives from the bridge for 127.0.0.0/8.
		if err := writeSysctl(fmt.Sprintf("net/ipv4/conf/%s/route_localnet", n.Bridge), "1"); err != nil {
			return created, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return created, fmt.Errorf("network %s: set %s up: %w", n.Name, n.Bridge, err)
	}
	return created, nil
}

// deleteLink removes the host interface called name; a missing one is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// macFor is the MAC of the interface holding a: 02:42 (locally
// administered, as Docker's) and the four bytes of the address, so an
// address reused by a new container comes with the same MAC and stale ARP
// entries on the network stay right.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().As4()
	return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 32)}
}

// writeSysctl sets /proc/sys/NAME to value unless it already is.
func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", name)
	if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding for the host; it never turns
// it off (other software may rely on it, and so may another state root).
func enableForwarding() error { return writeSysctl("net/ipv4/ip_forward", "1") }

// defaultRouteLinks are the interfaces of the host's IPv4 default routes.
func defaultRouteLinks() []netlink.Link {
	routes, err := whole(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil
	}
	var out []netlink.Link
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			out = append(out, link)
		}
	}
	return out
}

// hostMTU is the MTU of the interface of the host's default route, 1500 when
// there is none: a container's packets leave through it, so a larger MTU
// inside would only fragment.
func hostMTU() int {
	for _, link := range defaultRouteLinks() {
		if link.Attrs().MTU > 0 {
			return link.Attrs().MTU
		}
	}
	return 1500
}

// HostAddress is an IPv4 address of the interface of the host's default
// route: the host's own address, on which published ports are reached from
// other machines (and, by hairpin, from containers).
func HostAddress() (netip.Addr, bool) {
	for _, link := range defaultRouteLinks() {
		addrs, _ := whole(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				return ip.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

// hostPrefixes are the IPv4 prefixes the host already routes or holds: a
// subnet from the pools must not overlap any of them.
func hostPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 && !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	addrs, err := whole(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && !p.Addr().IsLoopback() {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	a = a.Unmap()
	if !a.Is4() || (bits != 32 && bits != 128) {
		return netip.Prefix{}, false
	}
	if bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), true
}
