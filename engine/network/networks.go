package network

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/network/ipam"
)

// planNetwork checks opts and turns them into a Network without id, bridge
// or (when none is configured) subnet.
func planNetwork(opts CreateOptions) (Network, ipam.Config, error) {
	n := Network{Name: opts.Name, Driver: DriverBridge, Internal: opts.Internal,
		Labels: orEmpty(maps.Clone(opts.Labels)), Options: orEmpty(maps.Clone(opts.Options)),
		Masquerade: !opts.Internal, ICC: true}
	fail := func(class error, format string, args ...any) (Network, ipam.Config, error) {
		return n, ipam.Config{}, wrapClass(class, fmt.Sprintf("network %s: ", opts.Name)+fmt.Sprintf(format, args...))
	}
	if !validName.MatchString(opts.Name) {
		return fail(errdefs.ErrInvalidArgument, "invalid name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
	}
	switch opts.Driver {
	case "", DriverBridge:
	default:
		return fail(errdefs.ErrNotImplemented, "driver %q is not supported (only bridge)", opts.Driver)
	}
	if opts.IPAMDriver != "" && opts.IPAMDriver != "default" {
		return fail(errdefs.ErrNotImplemented, "ipam driver %q is not supported (only default)", opts.IPAMDriver)
	}
	if opts.EnableIPv6 {
		return fail(errdefs.ErrNotImplemented, "enable_ipv6: IPv6 networks are not supported yet")
	}
	var cfg ipam.Config
	if len(opts.IPAM) > 1 {
		return fail(errdefs.ErrNotImplemented, "ipam.config has %d entries: only one IPv4 subnet is supported (IPv6 is not supported yet)", len(opts.IPAM))
	}
	if len(opts.IPAM) == 1 {
		c := opts.IPAM[0]
		var err error
		if cfg, err = ipam.ParseConfig(c.Subnet, c.Gateway, c.IPRange, c.AuxAddresses); err != nil {
			return fail(errdefs.ErrInvalidArgument, "%v", err)
		}
		if cfg.Subnet.IsValid() {
			if cfg, err = cfg.Complete(); err != nil {
				return n, cfg, fmt.Errorf("network %s: %w", opts.Name, err)
			}
		}
	}
	for k, v := range opts.Options {
		switch k {
		case OptionMTU:
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535 {
				return fail(errdefs.ErrInvalidArgument, "driver_opts %s=%q: want an MTU between 68 and 65535", k, v)
			}
			n.MTU = mtu
		case OptionMasquerade, OptionICC:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fail(errdefs.ErrInvalidArgument, "driver_opts %s=%q: want true or false", k, v)
			}
			if k == OptionMasquerade {
				n.Masquerade = b && !opts.Internal
			} else {
				n.ICC = b
			}
		case OptionBridgeName:
			return fail(errdefs.ErrNotImplemented, "driver_opts %s: berth names its bridges itself (so that two state roots never collide)", k)
		}
	}
	return n, cfg, nil
}

func wrapClass(class error, msg string) error {
	type withMessage interface{ WithMessage(string) error }
	if c, ok := class.(withMessage); ok {
		return c.WithMessage(msg)
	}
	return fmt.Errorf("%s: %w", msg, class)
}

// sameConfig reports whether an existing network satisfies a request for
// want: Create of an existing name is then a no-op, as `up` needs.
func sameConfig(have, want Network, cfg ipam.Config) bool {
	if have.Internal != want.Internal || have.Masquerade != want.Masquerade || have.ICC != want.ICC {
		return false
	}
	if want.MTU != 0 && have.MTU != want.MTU {
		return false
	}
	if cfg.Subnet.IsValid() {
		return have.Subnet == cfg.Subnet && have.Gateway == cfg.Gateway && have.IPRange == cfg.IPRange &&
			maps.Equal(have.AuxAddresses, cfg.AuxAddresses)
	}
	return true
}

// Create makes a network: its bridge, its address plan and its rules. A
// network of that name that already exists is returned as it is when its
// configuration agrees, refused with ErrConflict otherwise.
func (m *Manager) Create(opts CreateOptions) (Network, error) {
	n, cfg, err := planNetwork(opts)
	if err != nil {
		return Network{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.networks {
		if have.Name == n.Name {
			if sameConfig(have.Network, n, cfg) {
				return have.copy(), nil
			}
			return Network{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network %s exists with another configuration: remove it first (berth network rm %s, or down)", n.Name, n.Name))
		}
	}
	if n.MTU == 0 {
		n.MTU = hostMTU()
	}
	// Two state roots may choose subnets at once: a host-wide lock keeps
	// the choice and the address that claims it on the host together.
	unlock := lockHost()
	defer unlock()
	if cfg.Subnet.IsValid() {
		for _, o := range m.networks {
			if o.Subnet.Overlaps(cfg.Subnet) {
				return Network{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network %s: subnet %s overlaps subnet %s of network %s", n.Name, cfg.Subnet, o.Subnet, o.Name))
			}
		}
	} else {
		taken, err := hostPrefixes()
		if err != nil {
			return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
		}
		for _, o := range m.networks {
			taken = append(taken, o.Subnet)
		}
		if cfg.Subnet, err = ipam.Choose(m.pools, taken); err != nil {
			return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
		}
		if cfg, err = cfg.Complete(); err != nil {
			return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
		}
		n.PoolSubnet = true
	}
	n.Subnet, n.Gateway, n.IPRange, n.AuxAddresses = cfg.Subnet, cfg.Gateway, cfg.IPRange, cfg.AuxAddresses
	n.ID, n.Bridge = m.freshID("br")
	n.Created = time.Now().UTC()

	if _, err := ensureBridge(&n); err != nil {
		_ = deleteLink(n.Bridge)
		return Network{}, err
	}
	m.fail("network-after-bridge")
	if err := m.saveNetwork(&n); err != nil {
		_ = deleteLink(n.Bridge)
		return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
	}
	st := &netState{Network: n, space: ipam.NewSpace(cfg)}
	m.networks[n.ID] = st
	if !n.Internal {
		if err := enableForwarding(); err != nil {
			m.undoCreate(st)
			return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	if err := m.syncFirewall(); err != nil {
		m.undoCreate(st)
		return Network{}, fmt.Errorf("network %s: %w", n.Name, err)
	}
	return st.copy(), nil
}

func (m *Manager) undoCreate(st *netState) {
	delete(m.networks, st.ID)
	_ = removeRecord(m.networkPath(st.ID))
	_ = m.syncFirewall()
	_ = deleteLink(st.Bridge)
}

// freshID returns a new id and the link name of kind it gives, unused by
// this root's records and by the host's links; m.mu is held.
func (m *Manager) freshID(kind string) (id, link string) {
	for {
		id = newID()
		link = m.linkName(kind, id)
		if m.linkNameUsed(link) {
			continue
		}
		if _, err := os.Stat("/sys/class/net/" + link); err == nil {
			continue
		}
		return id, link
	}
}

func (m *Manager) linkNameUsed(name string) bool {
	for _, n := range m.networks {
		if n.Bridge == name {
			return true
		}
	}
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			if ep.HostInterface == name {
				return true
			}
		}
	}
	return false
}

// Remove deletes a network: its rules, its bridge, its record. A network
// with containers still attached is refused with ErrConflict naming them.
func (m *Manager) Remove(nameOrID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.findNetwork(nameOrID)
	if err != nil {
		return err
	}
	var users []string
	for _, sb := range m.sandboxes {
		for _, ep := range sb.rec.Endpoints {
			if ep.NetworkID == n.ID {
				users = append(users, sb.rec.Owner)
			}
		}
	}
	if len(users) > 0 || n.inflight > 0 {
		slices.Sort(users)
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("network %s is in use by %s: stop and remove them first", n.Name, strings.Join(users, ", ")))
	}
	// The record goes first: a crash after it leaves a bridge without a
	// record, which Open deletes, never a record without its bridge.
	if err := removeRecord(m.networkPath(n.ID)); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	delete(m.networks, n.ID)
	var errs []error
	if err := m.syncFirewall(); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(n.Bridge); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove network %s: %w", n.Name, errors.Join(errs...))
	}
	return nil
}

// lockHost takes a lock shared by every state root of the host and returns
// its release.
func lockHost() func() {
	dir := "/run/lock"
	if _, err := os.Stat(dir); err != nil {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, "berth-network.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() }
}
