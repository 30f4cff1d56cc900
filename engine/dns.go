package engine

import (
	"net/netip"

	"github.com/berth-dev/berth/dnsresolver"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// Labels the DNS records read; the same keys as reconcile's, which the
// engine may not import.
const (
	labelService = "com.docker.compose.service"
	labelOneOff  = "com.docker.compose.oneoff"
)

// dnsFeed keeps the DNS server's records in step with the containers: it
// is the container manager's network observer.
type dnsFeed struct {
	dns *dnsresolver.Server
	log interface {
		Warn(msg string, args ...any)
	}
}

// Attached publishes the container's names on each network it joined.
func (f *dnsFeed) Attached(c *container.Container) {
	for name, ep := range c.Network.Networks {
		if rec, ok := endpointRecord(c, ep); ok {
			if err := f.dns.PutEndpoint(name, rec); err != nil {
				f.log.Warn("dns: publish", "container", c.Name, "network", name, "err", err)
			}
		}
	}
}

// Detached withdraws them.
func (f *dnsFeed) Detached(c *container.Container) {
	for name := range c.Network.Networks {
		_ = f.dns.RemoveEndpoint(name, c.Name)
	}
}

// endpointRecord is the DNS view of a container on one network.
func endpointRecord(c *container.Container, ep container.Endpoint) (dnsresolver.Endpoint, bool) {
	ip, err := netip.ParseAddr(ep.IPAddress)
	if err != nil {
		return dnsresolver.Endpoint{}, false
	}
	rec := dnsresolver.Endpoint{
		Container: c.Name, IP: ip, Hostname: c.Config.Hostname,
		Aliases:   append([]string{c.ID[:12]}, ep.Aliases...),
		Upstreams: c.Network.Upstreams, Search: c.Config.DNSSearch,
	}
	if rec.Hostname == "" {
		rec.Hostname = c.ID[:12]
	}
	if c.Config.Labels[labelOneOff] != "True" {
		rec.Service = c.Config.Labels[labelService]
	}
	for _, l := range c.Config.Links {
		rec.Links = append(rec.Links, dnsresolver.Link{Alias: l.Alias, Target: l.Container})
	}
	return rec, true
}

// listen gives a network its DNS listener.
func (e *Engine) listen(n network.Network) {
	if err := e.DNS.AddNetwork(dnsresolver.Network{Name: n.Name, Gateway: n.Gateway, Subnet: n.Subnet}); err != nil {
		e.log.Warn("dns: listen", "network", n.Name, "err", err)
	}
}

// resyncDNS publishes the whole truth: a listener per network, the records
// of every running container. Used when the engine opens.
func (e *Engine) resyncDNS() {
	byNetwork := map[string][]dnsresolver.Endpoint{}
	for _, n := range e.Networks.List(nil) {
		e.listen(n)
		byNetwork[n.Name] = nil
	}
	for _, c := range e.Containers.List(container.ListOptions{}) {
		for name, ep := range c.Network.Networks {
			if rec, ok := endpointRecord(&c, ep); ok {
				byNetwork[name] = append(byNetwork[name], rec)
			}
		}
	}
	for name, eps := range byNetwork {
		if err := e.DNS.SetEndpoints(name, eps); err != nil {
			e.log.Warn("dns: resync", "network", name, "err", err)
		}
	}
}
