package dnsresolver

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// HostsSpec says how to write one container's /etc/hosts.
type HostsSpec struct {
	// Hostname and Domainname are the container's; with IP they make the
	// container's own line ("IP<TAB>host.domain host").
	Hostname   string
	Domainname string
	// IP is the container's address (on its first network); zero for none
	// (network_mode: none).
	IP netip.Addr
	// ExtraHosts are Compose `extra_hosts`, host-gateway already replaced by
	// the gateway's address.
	ExtraHosts []HostEntry
	// Links are the container's link aliases with their target's current
	// address: rewrite the file when a target is recreated elsewhere.
	Links []HostEntry
}

// HostEntry is one line of /etc/hosts: an address and its names.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// HostsFile returns the content of a container's /etc/hosts, laid out as
// Docker writes it: the loopback and IPv6 defaults, extra hosts, links, and
// last the container's own line. Entries without an address or names are
// left out.
func HostsFile(spec HostsSpec) []byte {
	var b bytes.Buffer
	line := func(ip string, names ...string) {
		fmt.Fprintf(&b, "%s\t%s\n", ip, strings.Join(names, " "))
	}
	line("127.0.0.1", "localhost")
	line("::1", "localhost", "ip6-localhost", "ip6-loopback")
	line("fe00::0", "ip6-localnet")
	line("ff00::0", "ip6-mcastprefix")
	line("ff02::1", "ip6-allnodes")
	line("ff02::2", "ip6-allrouters")
	for _, list := range [][]HostEntry{spec.ExtraHosts, spec.Links} {
		for _, e := range list {
			if e.IP.IsValid() && len(e.Names) > 0 {
				line(e.IP.String(), e.Names...)
			}
		}
	}
	if spec.IP.IsValid() && spec.Hostname != "" {
		// A hostname may be a full name itself, or be split over hostname and
		// domainname; the line carries the full name, then the short one.
		fqdn := spec.Hostname
		if spec.Domainname != "" {
			fqdn += "." + spec.Domainname
		}
		names := []string{fqdn}
		if short, _, ok := strings.Cut(fqdn, "."); ok {
			names = append(names, short)
		}
		line(spec.IP.String(), names...)
	}
	return b.Bytes()
}
