package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A published port is reserved on the host by a socket that berth holds
// open: a TCP listener or a bound UDP socket on host_ip:host_port. The
// kernel never delivers a packet to it (nat-prerouting and nat-output
// redirect everything sent to the port first), but no other program can take
// the port while berth publishes it, and a port another program already holds
// is found by trying to bind it. The daemon holds the sockets; between a
// daemon's exit and the next Open the port stays forwarded but unguarded.

func portKey(p PublishedPort) string { return p.Protocol + "/" + p.hostAddr() }

// bindHostPort binds proto on ip:port (port 0: one the kernel picks) and
// returns the socket and the port bound.
func bindHostPort(proto string, ip netip.Addr, port uint16) (io.Closer, uint16, error) {
	host := "0.0.0.0"
	if ip.IsValid() {
		host = ip.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, 0, err
		}
		return c, uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, 0, err
	}
	return l, uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// reservePorts chooses and binds a host port for each mapping, all or none;
// m.mu is held. owner names the sandbox in errors.
func (m *Manager) reservePorts(owner string, mappings []PortMapping) ([]PublishedPort, map[string]io.Closer, error) {
	var out []PublishedPort
	held := map[string]io.Closer{}
	release := func() {
		for _, c := range held {
			c.Close()
		}
	}
	for _, req := range mappings {
		pm, err := req.check()
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("%s: %w", owner, err)
		}
		p, c, err := m.reservePort(owner, pm, out)
		if err != nil {
			release()
			return nil, nil, err
		}
		out = append(out, p)
		held[portKey(p)] = c
	}
	return out, held, nil
}

func (m *Manager) reservePort(owner string, pm PortMapping, chosen []PublishedPort) (PublishedPort, io.Closer, error) {
	p := PublishedPort{HostIP: pm.HostIP, ContainerPort: pm.ContainerPort, Protocol: pm.Protocol}
	if pm.HostPort == 0 {
		c, port, err := bindHostPort(p.Protocol, p.HostIP, 0)
		if err != nil {
			return p, nil, m.portError(owner, pm, err)
		}
		p.HostPort = port
		return p, c, nil
	}
	last := pm.HostPort
	if pm.HostPortEnd > pm.HostPort {
		last = pm.HostPortEnd
	}
	var firstErr error
	for port := int(pm.HostPort); port <= int(last); port++ {
		p.HostPort = uint16(port)
		if by := m.publishedBy(p, chosen); by != "" {
			if firstErr == nil {
				firstErr = errdefs.ErrConflict.WithMessage(fmt.Sprintf("%s: cannot publish port %s: host port %s/%s is already published by %s",
					owner, pm, p.hostAddr(), p.Protocol, by))
			}
			continue
		}
		c, _, err := bindHostPort(p.Protocol, p.HostIP, p.HostPort)
		if err != nil {
			if firstErr == nil {
				firstErr = m.portError(owner, pm, err)
			}
			continue
		}
		return p, c, nil
	}
	if pm.HostPortEnd > pm.HostPort {
		return p, nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("%s: cannot publish port %s: no free host port in %d-%d (%v)",
			owner, pm, pm.HostPort, pm.HostPortEnd, firstErr))
	}
	return p, nil, firstErr
}

// publishedBy names the owner of a published port that takes the same host
// socket as p, among the records and those chosen so far; m.mu is held.
func (m *Manager) publishedBy(p PublishedPort, chosen []PublishedPort) string {
	for _, q := range chosen {
		if q.overlaps(p) {
			return "the same container (twice in its ports)"
		}
	}
	for _, sb := range m.sandboxes {
		for _, q := range sb.rec.Ports {
			if q.overlaps(p) {
				return sb.rec.Owner
			}
		}
	}
	return ""
}

func (m *Manager) portError(owner string, pm PortMapping, err error) error {
	where := "0.0.0.0"
	if pm.HostIP.IsValid() {
		where = pm.HostIP.String()
	}
	port := "a random port"
	if pm.HostPort != 0 {
		port = "port " + strconv.Itoa(int(pm.HostPort))
	}
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("%s: cannot publish port %s: host %s/%s on %s is already in use by another program",
			owner, pm, port, pm.Protocol, where))
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: cannot publish port %s: %s is not an address of this host",
			owner, pm, where))
	case errors.Is(err, unix.EACCES):
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: cannot publish port %s: permission denied binding host %s", owner, pm, port))
	}
	return fmt.Errorf("%s: publish port %s: %w", owner, pm, err)
}

// forgetUDPFlows drops the conntrack entries of UDP flows to a newly
// published host port: a client that sent datagrams before the port was
// published has an entry without DNAT, which would keep its later datagrams
// from reaching the container until it expired.
func forgetUDPFlows(ports []PublishedPort) {
	for _, p := range ports {
		if p.Protocol != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		if f.AddProtocol(unix.IPPROTO_UDP) != nil || f.AddPort(netlink.ConntrackOrigDstPort, p.HostPort) != nil {
			continue
		}
		_, _ = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	}
}
