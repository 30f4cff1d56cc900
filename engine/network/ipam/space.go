package ipam

import (
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// Space is the address book of one network: which addresses are reserved
// and which are in use, by whom. It is not safe for concurrent use; the
// caller holds its own lock.
type Space struct {
	cfg      Config
	reserved map[netip.Addr]string // gateway and aux addresses -> what they are
	used     map[netip.Addr]string // address -> owner (an endpoint)
	last     uint32                // the last address handed out dynamically
}

// NewSpace returns an empty address book for cfg, which Complete has checked.
func NewSpace(cfg Config) *Space {
	s := &Space{cfg: cfg, reserved: map[netip.Addr]string{}, used: map[netip.Addr]string{}}
	s.reserved[cfg.Gateway] = "the gateway"
	for name, a := range cfg.AuxAddresses {
		s.reserved[a] = "aux address " + name
	}
	return s
}

// Config returns the plan the space was made from.
func (s *Space) Config() Config { return s.cfg }

// Claim marks addr as used by owner: a static ipv4_address, or an address
// read back from a record at start.
func (s *Space) Claim(addr netip.Addr, owner string) error {
	if err := checkHost(s.cfg.Subnet, addr, "address"); err != nil {
		return err
	}
	if what, ok := s.reserved[addr]; ok {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("address %s is reserved (%s)", addr, what))
	}
	if who, ok := s.used[addr]; ok && who != owner {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("address %s is already in use by %s", addr, who))
	}
	s.used[addr] = owner
	return nil
}

// Allocate hands owner the next free address of the range, after the last
// one handed out.
func (s *Space) Allocate(owner string) (netip.Addr, error) {
	r := s.cfg.IPRange
	if !r.IsValid() {
		r = s.cfg.Subnet
	}
	first, last := toUint(r.Addr()), toUint(broadcast(r))
	size := last - first + 1
	start := s.last + 1
	if start < first || start > last {
		start = first
	}
	for i := uint32(0); i < size; i++ {
		a := fromUint(first + (start-first+i)%size)
		if a == s.cfg.Subnet.Addr() || a == broadcast(s.cfg.Subnet) {
			continue
		}
		if _, ok := s.reserved[a]; ok {
			continue
		}
		if _, ok := s.used[a]; ok {
			continue
		}
		s.used[a] = owner
		s.last = toUint(a)
		return a, nil
	}
	return netip.Addr{}, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("no free address left in %s", r))
}

// Release frees addr; freeing an address not in use does nothing.
func (s *Space) Release(addr netip.Addr) { delete(s.used, addr) }

// Owner returns who uses addr.
func (s *Space) Owner(addr netip.Addr) (string, bool) {
	o, ok := s.used[addr]
	return o, ok
}

// InUse returns the number of addresses handed out.
func (s *Space) InUse() int { return len(s.used) }
