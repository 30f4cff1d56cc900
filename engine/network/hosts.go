package network

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
)

// HostGateway is the special extra_hosts address Docker resolves to an
// address of the host that the container can reach.
const HostGateway = "host-gateway"

// ExtraHost is one Compose extra_hosts entry: NAME:IP.
type ExtraHost struct {
	Name string
	IP   string // an address, or HostGateway
}

// HostsOptions describe a container's /etc/hosts.
type HostsOptions struct {
	Hostname   string
	Domainname string
	// Addresses are the container's own: its hostname resolves to the first
	// (the gateway endpoint's, as Docker does), to 127.0.0.1 with none.
	Addresses  []netip.Addr
	ExtraHosts []ExtraHost
	// HostGatewayIP replaces "host-gateway": the gateway of the container's
	// gateway network (Sandbox.GatewayEndpoint), an address of the host.
	HostGatewayIP netip.Addr
}

// HostsFile renders a container's /etc/hosts as Docker writes it: loopback
// and IPv6 names, the extra hosts in their order, then the container's own
// name.
func HostsFile(o HostsOptions) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, h := range o.ExtraHosts {
		ip := h.IP
		if ip == HostGateway {
			if !o.HostGatewayIP.IsValid() {
				return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("extra_hosts %s:%s: the container has no network with a gateway to the host", h.Name, h.IP))
			}
			ip = o.HostGatewayIP.String()
		} else if a, err := netip.ParseAddr(strings.Trim(ip, "[]")); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("extra_hosts %s:%s: not an IP address", h.Name, h.IP))
		} else {
			ip = a.String()
		}
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\n") {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("extra_hosts %q: not a host name", h.Name))
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, h.Name)
	}
	if o.Hostname != "" {
		names := o.Hostname
		if o.Domainname != "" {
			names = o.Hostname + "." + o.Domainname + " " + o.Hostname
		}
		addr := "127.0.0.1"
		if len(o.Addresses) > 0 {
			addr = o.Addresses[0].String()
		}
		fmt.Fprintf(&b, "%s\t%s\n", addr, names)
	}
	return b.Bytes(), nil
}

// ResolvConf renders a container's /etc/resolv.conf: its name servers
// (berth's DNS server on the gateway address of each network, usually),
// search domains and options (Compose dns, dns_search, dns_opt).
func ResolvConf(nameservers []netip.Addr, search, options []string) []byte {
	var b bytes.Buffer
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}
