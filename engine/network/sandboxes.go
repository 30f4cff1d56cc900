package network

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// CreateSandbox makes a container's network namespace, with lo up and no
// other interface (network_mode none stops here), and reserves its
// published ports on the host. A port already taken fails with ErrConflict
// naming the port and opts.Owner before anything is made.
func (m *Manager) CreateSandbox(opts SandboxOptions) (Sandbox, error) {
	id := opts.ID
	if id == "" {
		id = newID()
	}
	if !validName.MatchString(id) || len(id) > 128 {
		return Sandbox{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("sandbox id %q: only [a-zA-Z0-9][a-zA-Z0-9_.-], at most 128 characters", id))
	}
	owner := opts.Owner
	if owner == "" {
		owner = "container " + shortID(id)
	}
	m.mu.Lock()
	if _, ok := m.sandboxes[id]; ok {
		m.mu.Unlock()
		return Sandbox{}, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("sandbox %s already exists", id))
	}
	ports, held, err := m.reservePorts(owner, opts.Ports)
	if err != nil {
		m.mu.Unlock()
		return Sandbox{}, err
	}
	sb := &sbState{rec: Sandbox{ID: id, Owner: owner, Path: m.nsPath(id), Ports: ports,
		Created: time.Now().UTC(), Endpoints: []Endpoint{}}}
	// In the map from now on, so the id and the ports are taken, but
	// locked: attach and delete wait until it is made or gone.
	sb.op.Lock()
	defer sb.op.Unlock()
	m.sandboxes[id] = sb
	for k, c := range held {
		m.held[k] = c
	}
	m.mu.Unlock()

	err = makeNetns(sb.rec.Path)
	if err == nil {
		m.fail("sandbox-after-netns")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		err = m.saveSandbox(&sb.rec)
	}
	if err != nil {
		delete(m.sandboxes, id)
		sb.deleted = true
		m.releasePortsLocked(ports)
		_ = removeNetns(sb.rec.Path)
		return Sandbox{}, fmt.Errorf("create sandbox for %s: %w", owner, err)
	}
	return sb.copy(), nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// releasePortsLocked closes the sockets holding ports; m.mu is held.
func (m *Manager) releasePortsLocked(ports []PublishedPort) {
	for _, p := range ports {
		if c, ok := m.held[portKey(p)]; ok {
			c.Close()
			delete(m.held, portKey(p))
		}
	}
}

// lockSandbox finds a sandbox and takes its operation lock.
func (m *Manager) lockSandbox(id string) (*sbState, error) {
	m.mu.Lock()
	sb, ok := m.sandboxes[id]
	m.mu.Unlock()
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("no such sandbox: " + id)
	}
	sb.op.Lock()
	m.mu.Lock()
	gone := sb.deleted
	m.mu.Unlock()
	if gone {
		sb.op.Unlock()
		return nil, errdefs.ErrNotFound.WithMessage("no such sandbox: " + id)
	}
	return sb, nil
}

// Sandbox returns the sandbox called id.
func (m *Manager) Sandbox(id string) (Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return Sandbox{}, errdefs.ErrNotFound.WithMessage("no such sandbox: " + id)
	}
	return sb.copy(), nil
}

// Sandboxes returns every sandbox, by id.
func (m *Manager) Sandboxes() []Sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Sandbox, 0, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		out = append(out, sb.copy())
	}
	slices.SortFunc(out, func(a, b Sandbox) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Endpoints returns the endpoints on a network, by owner then interface:
// what the DNS server's records for that network are made from.
func (m *Manager) Endpoints(network string) ([]Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.findNetwork(network)
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			if ep.NetworkID == n.ID {
				out = append(out, ep.copy())
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		if c := cmp.Compare(a.Owner, b.Owner); c != 0 {
			return c
		}
		return cmp.Compare(a.SandboxID, b.SandboxID)
	})
	return out, nil
}

func (sb *sbState) copy() Sandbox {
	c := sb.rec
	c.Ports = slices.Clone(c.Ports)
	c.Endpoints = make([]Endpoint, len(sb.rec.Endpoints))
	for i, ep := range sb.rec.Endpoints {
		c.Endpoints[i] = ep.copy()
	}
	if gw := gatewayEndpoint(c.Endpoints); gw != nil {
		c.GatewayEndpoint = gw.ID
	}
	return c
}

func (e Endpoint) copy() Endpoint {
	e.Aliases = slices.Clone(e.Aliases)
	return e
}

// gatewayEndpoint is the endpoint that holds the default route: among those
// on networks with a way out, the highest GwPriority, then the first
// attached. nil when none leads out.
func gatewayEndpoint(eps []Endpoint) *Endpoint {
	var best *Endpoint
	for i := range eps {
		ep := &eps[i]
		if !ep.Gateway.IsValid() {
			continue
		}
		if best == nil || ep.GwPriority > best.GwPriority || (ep.GwPriority == best.GwPriority && ep.Seq < best.Seq) {
			best = ep
		}
	}
	return best
}

// gatewayCopy is a copy of the gateway endpoint, safe to keep while eps changes.
func gatewayCopy(eps []Endpoint) *Endpoint {
	if g := gatewayEndpoint(eps); g != nil {
		c := *g
		return &c
	}
	return nil
}

func sameEndpoint(a, b *Endpoint) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID
}

// Attach joins a sandbox to a network: a veth pair, the sandbox end named
// opts.Interface (or the first free ethN) with its address and MAC; the
// default route moves to this network if it now has the highest priority,
// and the sandbox's published ports follow it.
func (m *Manager) Attach(sandboxID, network string, opts AttachOptions) (Endpoint, error) {
	sb, err := m.lockSandbox(sandboxID)
	if err != nil {
		return Endpoint{}, err
	}
	defer sb.op.Unlock()

	m.mu.Lock()
	ep, n, err := m.planEndpoint(sb, network, opts)
	if err != nil {
		m.mu.Unlock()
		return Endpoint{}, err
	}
	n.inflight++
	nsPath, bridge, mtu := sb.rec.Path, n.Bridge, n.MTU
	m.mu.Unlock()

	err = makeVeth(nsPath, bridge, mtu, &ep)
	if err == nil {
		m.fail("attach-after-veth")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	n.inflight--
	if err == nil {
		before := gatewayCopy(sb.rec.Endpoints)
		sb.rec.Endpoints = append(sb.rec.Endpoints, ep)
		err = m.saveSandbox(&sb.rec)
		if err == nil {
			err = m.gatewayChanged(sb, before)
		}
		if err != nil {
			sb.rec.Endpoints = sb.rec.Endpoints[:len(sb.rec.Endpoints)-1]
			_ = m.saveSandbox(&sb.rec)
			_ = m.gatewayChanged(sb, gatewayCopy(append(slices.Clone(sb.rec.Endpoints), ep)))
		}
	}
	if err != nil {
		n.space.Release(ep.IP())
		_ = deleteLink(ep.HostInterface)
		return Endpoint{}, fmt.Errorf("attach %s to network %s: %w", sb.rec.Owner, n.Name, err)
	}
	return ep.copy(), nil
}

// planEndpoint checks an attachment and allocates its address and names;
// m.mu is held.
func (m *Manager) planEndpoint(sb *sbState, network string, opts AttachOptions) (Endpoint, *netState, error) {
	n, err := m.findNetwork(network)
	if err != nil {
		return Endpoint{}, nil, err
	}
	owner := sb.rec.Owner
	fail := func(class error, format string, args ...any) (Endpoint, *netState, error) {
		return Endpoint{}, nil, wrapClass(class, fmt.Sprintf("attach %s to network %s: ", owner, n.Name)+fmt.Sprintf(format, args...))
	}
	var seq uint64
	used := map[string]bool{"lo": true}
	for _, ep := range sb.rec.Endpoints {
		if ep.NetworkID == n.ID {
			return fail(errdefs.ErrAlreadyExists, "already attached")
		}
		used[ep.Interface] = true
		seq = max(seq, ep.Seq)
	}
	iface := opts.Interface
	if iface == "" {
		for i := 0; ; i++ {
			if iface = "eth" + strconv.Itoa(i); !used[iface] {
				break
			}
		}
	} else if used[iface] {
		return fail(errdefs.ErrConflict, "interface %s is already taken in the sandbox", iface)
	} else if len(iface) > 15 || strings.ContainsAny(iface, "/: \t") {
		return fail(errdefs.ErrInvalidArgument, "invalid interface name %q", iface)
	}
	var ip netip.Addr
	if opts.IPv4Address.IsValid() {
		ip = opts.IPv4Address.Unmap()
		if !n.PoolSubnet || n.Subnet.Contains(ip) {
			if err := n.space.Claim(ip, owner); err != nil {
				return Endpoint{}, nil, fmt.Errorf("attach %s to network %s: ipv4_address: %w", owner, n.Name, err)
			}
		} else {
			return fail(errdefs.ErrInvalidArgument, "ipv4_address %s is not in the network's subnet %s (give the network an ipam.config subnet to choose addresses)", ip, n.Subnet)
		}
	} else if ip, err = n.space.Allocate(owner); err != nil {
		return fail(errdefs.ErrUnavailable, "%v", err)
	}
	mac := macFor(ip).String()
	if opts.MACAddress != "" {
		hw, err := net.ParseMAC(opts.MACAddress)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			n.space.Release(ip)
			return fail(errdefs.ErrInvalidArgument, "mac_address %q is not a unicast Ethernet address", opts.MACAddress)
		}
		mac = hw.String()
	}
	id, hostIf := m.freshID("ve")
	ep := Endpoint{
		ID: id, NetworkID: n.ID, NetworkName: n.Name, SandboxID: sb.rec.ID, Owner: owner,
		Interface: iface, HostInterface: hostIf, Address: netip.PrefixFrom(ip, n.Subnet.Bits()), MAC: mac,
		GwPriority: opts.GwPriority, Aliases: slices.Clone(opts.Aliases), Seq: seq + 1,
	}
	if !n.Internal {
		ep.Gateway = n.Gateway
	}
	return ep, n, nil
}

// gatewayChanged moves the default route and the published ports when the
// gateway endpoint is no longer before; m.mu is held.
func (m *Manager) gatewayChanged(sb *sbState, before *Endpoint) error {
	after := gatewayEndpoint(sb.rec.Endpoints)
	if sameEndpoint(before, after) {
		return nil
	}
	if err := setDefaultRoute(sb.rec.Path, after); err != nil {
		return err
	}
	if len(sb.rec.Ports) == 0 {
		return nil
	}
	if err := m.syncFirewall(); err != nil {
		return err
	}
	forgetUDPFlows(sb.rec.Ports)
	return nil
}

// Detach removes a sandbox's endpoint on a network: the veth pair goes,
// the address is freed, the default route and published ports move to the
// next network if it held them.
func (m *Manager) Detach(sandboxID, network string) error {
	sb, err := m.lockSandbox(sandboxID)
	if err != nil {
		return err
	}
	defer sb.op.Unlock()
	m.mu.Lock()
	n, err := m.findNetwork(network)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	i := slices.IndexFunc(sb.rec.Endpoints, func(ep Endpoint) bool { return ep.NetworkID == n.ID })
	if i < 0 {
		m.mu.Unlock()
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s is not attached to network %s", sb.rec.Owner, n.Name))
	}
	ep := sb.rec.Endpoints[i]
	before := gatewayCopy(sb.rec.Endpoints)
	sb.rec.Endpoints = slices.Delete(sb.rec.Endpoints, i, i+1)
	// The record first: a crash after it leaves a veth without a record,
	// which Open deletes.
	if err := m.saveSandbox(&sb.rec); err != nil {
		sb.rec.Endpoints = slices.Insert(sb.rec.Endpoints, i, ep)
		m.mu.Unlock()
		return fmt.Errorf("detach %s from network %s: %w", sb.rec.Owner, n.Name, err)
	}
	n.inflight++ // the network stays until its port is gone
	m.mu.Unlock()

	// Outside the manager's lock: deleting a link waits for RCU grace
	// periods, and other containers' attachments need not wait for it.
	var errs []error
	if err := deleteLink(ep.HostInterface); err != nil {
		errs = append(errs, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	n.inflight--
	// Freed only now that no interface holds it any more.
	n.space.Release(ep.IP())
	if err := m.gatewayChanged(sb, before); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("detach %s from network %s: %w", sb.rec.Owner, n.Name, errors.Join(errs...))
	}
	return nil
}

// DeleteSandbox removes a sandbox: every endpoint, its published ports, the
// namespace's bind mount. A container still running in the namespace keeps
// it (with lo only) until it exits.
func (m *Manager) DeleteSandbox(id string) error {
	sb, err := m.lockSandbox(id)
	if err != nil {
		return err
	}
	defer sb.op.Unlock()
	m.mu.Lock()
	// The record first: what a crash leaves after it (veths, the mount)
	// has no record, and Open deletes it.
	if err := removeRecord(m.sandboxPath(id)); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("delete sandbox of %s: %w", sb.rec.Owner, err)
	}
	sb.deleted = true
	delete(m.sandboxes, id)
	var errs []error
	m.releasePortsLocked(sb.rec.Ports)
	if len(sb.rec.Ports) > 0 && gatewayEndpoint(sb.rec.Endpoints) != nil {
		if err := m.syncFirewall(); err != nil {
			errs = append(errs, err)
		}
	}
	nets := make([]*netState, len(sb.rec.Endpoints))
	for i, ep := range sb.rec.Endpoints {
		if nets[i] = m.networks[ep.NetworkID]; nets[i] != nil {
			nets[i].inflight++
		}
	}
	m.mu.Unlock()

	for _, ep := range sb.rec.Endpoints {
		// Deleted explicitly, not left to the namespace's end: a running
		// container would keep the namespace, and the host end, alive.
		if err := deleteLink(ep.HostInterface); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeNetns(sb.rec.Path); err != nil {
		errs = append(errs, err)
	}

	m.mu.Lock()
	for i, ep := range sb.rec.Endpoints {
		if nets[i] != nil {
			nets[i].inflight--
			nets[i].space.Release(ep.IP())
		}
	}
	m.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("delete sandbox of %s: %w", sb.rec.Owner, errors.Join(errs...))
	}
	return nil
}
