// Package ipam hands out IPv4 subnets to networks and addresses to the
// containers on them. It is pure bookkeeping: it touches no kernel state and
// keeps nothing on disk. Its caller (package network) persists networks and
// endpoints and rebuilds a Space from them at start, so the records on disk
// are the one source of truth and an allocation can never disagree with them.
//
// Two levels:
//
//   - Pools: a network created without a subnet draws one from the pools,
//     skipping every prefix already taken (other networks of the state root,
//     the host's routes and addresses). The default pools avoid Docker's
//     defaults (172.17.0.0/16-172.31.0.0/16 and 192.168.0.0/16), so berth and
//     dockerd can share a host.
//   - Space: the addresses of one network. The network address, the broadcast
//     address, the gateway and the aux_addresses are never handed out; dynamic
//     addresses come from ip_range when set, else from the whole subnet, in
//     round-robin order so that a freed address is not reused at once (a peer's
//     ARP cache may still point at the old owner's MAC).
package ipam

import (
	"fmt"
	"net/netip"

	"github.com/containerd/errdefs"
)

// Pool is a block of address space cut into subnets of one size.
type Pool struct {
	Base netip.Prefix // e.g. 10.210.0.0/15
	Size int          // prefix length of each subnet drawn from it, e.g. 24
}

// DefaultPools returns the pools networks without a configured subnet draw
// from: 10.210.0.0/15 in /24 subnets (512 networks of 253 containers). It
// stays clear of Docker's defaults (172.17-31.0.0/16, 192.168.0.0/16 in /20s)
// and of Podman's (10.88.0.0/16, 10.89.0.0/16 in /24s).
func DefaultPools() []Pool {
	return []Pool{{Base: netip.MustParsePrefix("10.210.0.0/15"), Size: 24}}
}

// DockerDefaultPools are the subnets Docker's default address pools hand
// out. Berth's pools never overlap them; Choose also skips them explicitly,
// so a configuration with wider pools still leaves room for a dockerd that
// has not created its networks yet.
func DockerDefaultPools() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("172.17.0.0/16"),
		netip.MustParsePrefix("172.18.0.0/15"),
		netip.MustParsePrefix("172.20.0.0/14"),
		netip.MustParsePrefix("172.24.0.0/13"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
}

// Choose returns the first subnet of pools that overlaps none of taken nor
// Docker's default pools.
func Choose(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	avoid := append(append([]netip.Prefix(nil), taken...), DockerDefaultPools()...)
	for _, p := range pools {
		base := p.Base.Masked()
		if !base.Addr().Is4() || p.Size < base.Bits() || p.Size > 30 {
			return netip.Prefix{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("address pool %s/%d: want an IPv4 base and a subnet size between its length and 30", p.Base, p.Size))
		}
		step := uint32(1) << (32 - p.Size)
		count := uint64(1) << (p.Size - base.Bits())
		start := toUint(base.Addr())
		for i := uint64(0); i < count; i++ {
			cand := netip.PrefixFrom(fromUint(start+uint32(i)*step), p.Size)
			if !overlapsAny(cand, avoid) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, errdefs.ErrUnavailable.WithMessage("no free subnet left in the address pools: remove unused networks or give the network a subnet (ipam.config)")
}

func overlapsAny(p netip.Prefix, others []netip.Prefix) bool {
	for _, o := range others {
		if o.Bits() > 0 && p.Overlaps(o) {
			return true
		}
	}
	return false
}

// Config is the address plan of one network, as Compose's ipam.config says it.
type Config struct {
	Subnet       netip.Prefix
	Gateway      netip.Addr            // zero: the subnet's first host address
	IPRange      netip.Prefix          // zero: the whole subnet
	AuxAddresses map[string]netip.Addr // reserved, never handed out
}

// ParseConfig reads the strings of a Compose ipam.config entry. An empty
// subnet is allowed here (the caller draws one from the pools) only if
// gateway, ip_range and aux_addresses are empty too.
func ParseConfig(subnet, gateway, ipRange string, aux map[string]string) (Config, error) {
	var c Config
	var err error
	if subnet == "" {
		if gateway != "" || ipRange != "" || len(aux) > 0 {
			return c, errdefs.ErrInvalidArgument.WithMessage("ipam.config: gateway, ip_range and aux_addresses need a subnet")
		}
		return c, nil
	}
	if c.Subnet, err = netip.ParsePrefix(subnet); err != nil {
		return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ipam.config: subnet %q: %v", subnet, err))
	}
	if gateway != "" {
		if c.Gateway, err = netip.ParseAddr(gateway); err != nil {
			return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ipam.config: gateway %q: %v", gateway, err))
		}
	}
	if ipRange != "" {
		if c.IPRange, err = netip.ParsePrefix(ipRange); err != nil {
			return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ipam.config: ip_range %q: %v", ipRange, err))
		}
	}
	for name, s := range aux {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ipam.config: aux_addresses %s %q: %v", name, s, err))
		}
		if c.AuxAddresses == nil {
			c.AuxAddresses = map[string]netip.Addr{}
		}
		c.AuxAddresses[name] = a
	}
	return c, nil
}

// Complete checks c and fills in the default gateway.
func (c Config) Complete() (Config, error) {
	s := c.Subnet
	if !s.IsValid() {
		return c, errdefs.ErrInvalidArgument.WithMessage("ipam.config: no subnet")
	}
	if !s.Addr().Is4() {
		return c, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("subnet %s: IPv6 networks are not supported yet", s))
	}
	if s.Masked() != s {
		return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("subnet %s has host bits set: did you mean %s?", s, s.Masked()))
	}
	if s.Bits() > 30 {
		return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("subnet %s is too small: a network needs at least a /30", s))
	}
	if !c.Gateway.IsValid() {
		c.Gateway = s.Addr().Next()
	}
	if err := checkHost(s, c.Gateway, "gateway"); err != nil {
		return c, err
	}
	if c.IPRange.IsValid() {
		r := c.IPRange
		if !r.Addr().Is4() || r.Masked() != r || r.Bits() < s.Bits() || !s.Contains(r.Addr()) {
			return c, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ip_range %s must be a prefix inside subnet %s", r, s))
		}
	}
	for name, a := range c.AuxAddresses {
		if err := checkHost(s, a, "aux_addresses "+name); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkHost reports whether a is a usable host address of s.
func checkHost(s netip.Prefix, a netip.Addr, what string) error {
	if !a.Is4() || !s.Contains(a) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s %s is not in subnet %s", what, a, s))
	}
	if a == s.Addr() || a == broadcast(s) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s %s is the network or broadcast address of %s", what, a, s))
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	return fromUint(toUint(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

func toUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
