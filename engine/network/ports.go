package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// ParsePortSpec reads Docker's short syntax for a published port,
// [[host_ip:][host_port[-end]]:]container_port[-end][/protocol], as `docker
// run -p` and Compose's short form take it. A container range publishes each
// of its ports, on the host range of the same length when one is given. One
// container port with a host range is published on the first free port of
// the range. An IPv6 host
// address is written in brackets ([::1]:8080:80) and refused, as IPv6 is not
// supported yet.
func ParsePortSpec(spec string) ([]PortMapping, error) {
	bad := func(why string) ([]PortMapping, error) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port %q: %s", spec, why))
	}
	rest, proto := spec, "tcp"
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest, proto = rest[:i], strings.ToLower(rest[i+1:])
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol must be tcp or udp (sctp is not supported)")
	}
	var hostIP netip.Addr
	if strings.HasPrefix(rest, "[") {
		return bad("IPv6 host addresses are not supported yet")
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return bad("want [host_ip:][host_port:]container_port")
	}
	if len(parts) == 3 {
		if parts[0] != "" {
			a, err := netip.ParseAddr(parts[0])
			if err != nil || !a.Is4() {
				return bad("host address must be an IPv4 address")
			}
			if !a.IsUnspecified() {
				hostIP = a
			}
		}
		parts = parts[1:]
	}
	hostPart := ""
	if len(parts) == 2 {
		hostPart = parts[0]
		parts = parts[1:]
	}
	cLo, cHi, err := parsePortRange(parts[0], false)
	if err != nil {
		return bad("container port: " + err.Error())
	}
	var hLo, hHi uint16
	if hostPart != "" {
		if hLo, hHi, err = parsePortRange(hostPart, true); err != nil {
			return bad("host port: " + err.Error())
		}
	}
	n := int(cHi-cLo) + 1
	hostN := int(hHi-hLo) + 1
	if hLo != 0 && n > 1 && hostN != n {
		return bad(fmt.Sprintf("host range %d-%d and container range %d-%d differ in length", hLo, hHi, cLo, cHi))
	}
	out := make([]PortMapping, 0, n)
	for i := 0; i < n; i++ {
		m := PortMapping{HostIP: hostIP, ContainerPort: cLo + uint16(i), Protocol: proto}
		switch {
		case hLo == 0:
		case hostN == n:
			m.HostPort = hLo + uint16(i)
		default: // one container port, a host range to pick from
			m.HostPort, m.HostPortEnd = hLo, hHi
		}
		out = append(out, m)
	}
	return out, nil
}

// ParsePublished reads a Compose "published" value: "", "8080" or
// "8000-8010".
func ParsePublished(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, err = parsePortRange(s, true)
	if err != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("published port %q: %v", s, err))
	}
	if hi == lo {
		hi = 0
	}
	return lo, hi, nil
}

// parsePortRange reads "N" or "N-M"; zero is allowed only for a host port
// (a random one).
func parsePortRange(s string, zeroOK bool) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo, zeroOK && !isRange)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return a, a, nil
	}
	b, err := parsePort(hi, false)
	if err != nil {
		return 0, 0, err
	}
	if b < a {
		return 0, 0, fmt.Errorf("range %s ends before it starts", s)
	}
	return a, b, nil
}

func parsePort(s string, zeroOK bool) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n == 0 && !zeroOK {
		return 0, fmt.Errorf("port 0 is not allowed here")
	}
	return uint16(n), nil
}

// check validates m and fills in its defaults.
func (m PortMapping) check() (PortMapping, error) {
	if m.Protocol == "" {
		m.Protocol = "tcp"
	}
	m.Protocol = strings.ToLower(m.Protocol)
	if m.Protocol != "tcp" && m.Protocol != "udp" {
		return m, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port %d/%s: protocol must be tcp or udp", m.ContainerPort, m.Protocol))
	}
	if m.ContainerPort == 0 {
		return m, errdefs.ErrInvalidArgument.WithMessage("published port without a container port")
	}
	if m.HostIP.IsValid() {
		if !m.HostIP.Is4() && !m.HostIP.Is4In6() {
			return m, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("port %s: IPv6 host addresses are not supported yet", m))
		}
		m.HostIP = m.HostIP.Unmap()
		if m.HostIP.IsUnspecified() {
			m.HostIP = netip.Addr{}
		}
	}
	if m.HostPortEnd != 0 && m.HostPortEnd <= m.HostPort {
		if m.HostPortEnd < m.HostPort || m.HostPort == 0 {
			return m, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port %s: host range ends before it starts", m))
		}
		m.HostPortEnd = 0
	}
	return m, nil
}

// String writes m in Docker's short syntax.
func (m PortMapping) String() string {
	var b strings.Builder
	if m.HostIP.IsValid() {
		b.WriteString(m.HostIP.String() + ":")
	}
	if m.HostPort != 0 {
		b.WriteString(strconv.Itoa(int(m.HostPort)))
		if m.HostPortEnd > m.HostPort {
			b.WriteString("-" + strconv.Itoa(int(m.HostPortEnd)))
		}
	}
	if b.Len() > 0 {
		b.WriteByte(':')
	}
	proto := m.Protocol
	if proto == "" {
		proto = "tcp"
	}
	return b.String() + strconv.Itoa(int(m.ContainerPort)) + "/" + proto
}

// String writes p as `docker port` does: 0.0.0.0:8080->80/tcp.
func (p PublishedPort) String() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.ContainerPort, p.Protocol)
}

// hostAddr is the address a published port is bound to on the host.
func (p PublishedPort) hostAddr() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return ip + ":" + strconv.Itoa(int(p.HostPort))
}

// overlaps reports whether p and q would take the same host socket.
func (p PublishedPort) overlaps(q PublishedPort) bool {
	return p.Protocol == q.Protocol && p.HostPort == q.HostPort &&
		(!p.HostIP.IsValid() || !q.HostIP.IsValid() || p.HostIP == q.HostIP)
}
