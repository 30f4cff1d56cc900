package engine

import (
	"errors"
	"net/netip"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

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

// listen gives a network its DNS listener. The gateway's port 53 may still
// be held for a moment by the listener of a network that had the subnet
// before (another state root's, being removed): a busy address is tried
// again for up to two seconds rather than leaving the network without DNS.
func (e *Engine) listen(n network.Network) {
	spec := dnsresolver.Network{Name: n.Name, Gateway: n.Gateway, Subnet: n.Subnet}
	var err error
	for wait, waited := 10*time.Millisecond, time.Duration(0); ; wait *= 2 {
		if err = e.DNS.AddNetwork(spec); err == nil || !errors.Is(err, unix.EADDRINUSE) || waited >= 2*time.Second {
			break
		}
		time.Sleep(wait)
		waited += wait
	}
	if err != nil && !errdefs.IsAlreadyExists(err) {
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
