package container

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/dnsresolver"
	"github.com/berth-dev/berth/engine/network"
)

// DefaultNetwork is the network a container joins when its config names
// none, as docker's default bridge; it is made on first use.
const DefaultNetwork = "bridge"

// setupNetwork gives the container its network namespace and returns its
// path for the spec ("" for network_mode host: the host's own namespace).
func (m *Manager) setupNetwork(ctx context.Context, c *Container) (string, error) {
	c.Network = NetworkSettings{}
	mode := c.Config.NetworkMode
	switch {
	case mode == "host":
		return "", nil
	case mode == "none":
		// A namespace with loopback only: the runtime clones a new one,
		// which costs far less than a sandbox (a namespace bind-mounted to
		// outlive its processes, a record) and needs nothing to undo.
		return "", nil
	case strings.HasPrefix(mode, "container:"):
		other, err := m.lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", fmt.Errorf("network_mode %s: %w", mode, err)
		}
		// The caller holds c's lock, not other's; read other's record
		// under its own lock.
		other.op.Lock()
		path, status, pid := other.c.Network.SandboxPath, other.c.State.Status, other.c.State.Pid
		other.op.Unlock()
		if status != Running || pid == 0 {
			return "", errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("network_mode %s: that container is not running", mode))
		}
		if path == "" {
			// Its own namespace without a sandbox (network_mode none):
			// joined through its first process.
			path = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
		return path, nil
	}
	if m.networks == nil {
		return "", errdefs.ErrNotImplemented.WithMessage("networking is not available in this engine")
	}
	var ports []network.PortMapping
	for _, p := range c.Config.PortBindings {
		pm := network.PortMapping{HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port %d: invalid host ip %q", p.ContainerPort, p.HostIP))
			}
			if ip.Is6() {
				continue // IPv6 publishing is not supported yet; docker binds both, berth the IPv4 side
			}
			pm.HostIP = ip
		}
		ports = append(ports, pm)
	}
	sb, err := m.networks.CreateSandbox(network.SandboxOptions{ID: c.ID, Owner: owner(c), Ports: ports})
	if err != nil {
		return "", err
	}
	c.Network.SandboxPath = sb.Path
	attachments := c.Config.Networks
	if len(attachments) == 0 {
		if err := m.ensureDefaultNetwork(); err != nil {
			_ = m.networks.DeleteSandbox(sb.ID)
			return "", err
		}
		attachments = []Attachment{{Network: DefaultNetwork}}
	}
	c.Network.Networks = map[string]Endpoint{}
	for _, a := range attachments {
		opts := network.AttachOptions{MACAddress: a.MacAddress, Aliases: a.Aliases, GwPriority: a.Priority}
		if a.IPv4Address != "" {
			ip, err := netip.ParseAddr(a.IPv4Address)
			if err != nil {
				_ = m.networks.DeleteSandbox(sb.ID)
				return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s: invalid ipv4_address %q", a.Network, a.IPv4Address))
			}
			opts.IPv4Address = ip
		}
		ep, err := m.networks.Attach(sb.ID, a.Network, opts)
		if err != nil {
			_ = m.networks.DeleteSandbox(sb.ID)
			return "", fmt.Errorf("attach to network %s: %w", a.Network, err)
		}
		gw := ep.Gateway
		if n, err := m.networks.Get(a.Network); err == nil {
			gw = n.Gateway
		}
		c.Network.Networks[a.Network] = Endpoint{
			NetworkID: ep.NetworkID, IPAddress: ep.IP().String(), PrefixLen: ep.Address.Bits(),
			Gateway: gw.String(), MacAddress: ep.MAC, Aliases: a.Aliases, Interface: ep.Interface,
			EndpointKey: ep.ID, DNSNames: dnsNames(c, a.Aliases),
		}
		c.Network.Order = append(c.Network.Order, a.Network)
	}
	if sb, err = m.networks.Sandbox(sb.ID); err == nil {
		for _, p := range sb.Ports {
			bound := PortBinding{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
			if p.HostIP.IsValid() {
				bound.HostIP = p.HostIP.String()
			} else {
				bound.HostIP = "0.0.0.0"
			}
			c.Network.Ports = append(c.Network.Ports, bound)
		}
	}
	return c.Network.SandboxPath, nil
}

// dnsNames are the names the container answers to on a network: its name,
// its hostname, its short id and the attachment's aliases.
func dnsNames(c *Container, aliases []string) []string {
	names := []string{c.Name, c.ID[:12]}
	if c.Config.Hostname != "" && c.Config.Hostname != c.Name {
		names = append(names, c.Config.Hostname)
	}
	return append(names, aliases...)
}

func owner(c *Container) string {
	if s := c.Config.Labels["com.docker.compose.service"]; s != "" {
		return "service " + s
	}
	return "container " + c.Name
}

func (m *Manager) ensureDefaultNetwork() error {
	if _, err := m.networks.Get(DefaultNetwork); err == nil {
		return nil
	}
	n, err := m.networks.Create(network.CreateOptions{Name: DefaultNetwork})
	if errdefs.IsAlreadyExists(err) || errdefs.IsConflict(err) {
		return nil
	}
	if err == nil {
		if o, ok := m.observer.(NetworkCreator); ok {
			o.NetworkCreated(n)
		}
	}
	return err
}

// NetworkCreator is a NetworkObserver that also hears of the networks the
// manager makes itself (the default network, on first use), so that the
// DNS server listens on them before their first container starts.
type NetworkCreator interface {
	NetworkCreated(n network.Network)
}

// teardownNetwork deletes the sandbox the container owns, if any.
func (m *Manager) teardownNetwork(c *Container) {
	if m.observer != nil && len(c.Network.Networks) > 0 {
		m.observer.Detached(c)
	}
	if m.networks == nil || c.Network.SandboxPath == "" || strings.HasPrefix(c.Config.NetworkMode, "container:") {
		c.Network = NetworkSettings{}
		return
	}
	if err := m.networks.DeleteSandbox(c.ID); err != nil && !errdefs.IsNotFound(err) {
		m.log.Warn("delete sandbox", "container", c.Name, "err", err)
	}
	c.Network = NetworkSettings{}
}

// firstEndpoint is the endpoint of the first network the container joined.
func (c *Container) firstEndpoint() (Endpoint, bool) {
	if len(c.Network.Order) == 0 {
		return Endpoint{}, false
	}
	ep, ok := c.Network.Networks[c.Network.Order[0]]
	return ep, ok
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf, which the spec bind-mounts over the image's. They are
// written in place: made again at every start, and bind-mounted (a
// replaced file would leave its mount on the old one); in a directory
// made ahead they exist already.
func (m *Manager) writeEtcFiles(c *Container) error {
	dir := m.dir(c.ID)
	hostname := hostnameOf(c)
	if err := writeInPlace(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	hosts := dnsresolver.HostsSpec{Hostname: hostname, Domainname: c.Config.Domainname}
	ep, hasEndpoint := c.firstEndpoint()
	if hasEndpoint {
		hosts.IP, _ = netip.ParseAddr(ep.IPAddress)
	}
	for _, h := range c.Config.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			// host=ip is accepted too, as compose writes it
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("extra_hosts %q: want HOST:IP", h))
		}
		if ip == "host-gateway" && hasEndpoint {
			ip = ep.Gateway
		}
		addr, err := netip.ParseAddr(strings.Trim(ip, "[]"))
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("extra_hosts %q: invalid address", h))
		}
		hosts.ExtraHosts = append(hosts.ExtraHosts, dnsresolver.HostEntry{IP: addr, Names: []string{name}})
	}
	for _, l := range c.Config.Links {
		// As docker writes it: the alias, then the target's name and id.
		if t, ok := m.linkTarget(c, l.Container); ok {
			hosts.Links = append(hosts.Links, dnsresolver.HostEntry{IP: t.ip, Names: []string{l.Alias, t.name, t.id[:12]}})
		}
	}
	if err := writeInPlace(filepath.Join(dir, "hosts"), dnsresolver.HostsFile(hosts), 0o644); err != nil {
		return err
	}
	hostConf, _ := os.ReadFile("/etc/resolv.conf")
	var resolv []byte
	if gw, err := netip.ParseAddr(ep.Gateway); hasEndpoint && err == nil && gw.IsValid() {
		content, upstreams, err := dnsresolver.ResolvConf(dnsresolver.ResolvConfSpec{
			Nameserver: gw, Host: hostConf, DNS: c.Config.DNS, Search: c.Config.DNSSearch, Options: c.Config.DNSOptions,
		})
		if err != nil {
			return err
		}
		resolv = content
		c.Network.Upstreams = upstreams
	} else {
		resolv = hostConf // host and none networking: the host's resolvers
	}
	return writeInPlace(filepath.Join(dir, "resolv.conf"), resolv, 0o644)
}

// linked is what a link needs of its target container.
type linked struct {
	ip       netip.Addr
	name, id string
	env      []string
	ports    []Port
}

// linkTarget is a linked container as c sees it: its address on the first
// network of c that it is on, its name, environment and exposed ports.
func (m *Manager) linkTarget(c *Container, target string) (linked, bool) {
	e, err := m.lookup(target)
	if err != nil || e.c.ID == c.ID {
		return linked{}, false
	}
	e.op.Lock()
	t := linked{name: e.c.Name, id: e.c.ID, env: e.c.Config.Env, ports: e.c.Config.ExposedPorts}
	nets := e.c.Network.Networks
	e.op.Unlock()
	for _, name := range c.Network.Order {
		if ep, ok := nets[name]; ok {
			ip, err := netip.ParseAddr(ep.IPAddress)
			t.ip = ip
			return t, err == nil
		}
	}
	return linked{}, false
}

// linkEnv is the legacy link environment of c (ALIAS_PORT=tcp://IP:PORT,
// ALIAS_NAME, ALIAS_ENV_*), for services that opt in with x-berth link_env.
func (m *Manager) linkEnv(c *Container) []string {
	var env []string
	for _, l := range c.Config.Links {
		t, ok := m.linkTarget(c, l.Container)
		if !ok {
			continue
		}
		spec := dnsresolver.LinkEnvSpec{Alias: l.Alias, Container: c.Name, IP: t.ip, Env: t.env}
		for _, p := range t.ports {
			spec.Ports = append(spec.Ports, dnsresolver.Port{Number: p.Port, Proto: p.Protocol})
		}
		env = append(env, dnsresolver.LinkEnv(spec)...)
	}
	return env
}

// hostnameOf is the container's hostname: its config's, else the short id
// as docker uses.
func hostnameOf(c *Container) string {
	if c.Config.Hostname != "" {
		return c.Config.Hostname
	}
	return c.ID[:12]
}
