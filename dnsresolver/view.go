package dnsresolver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/containerd/errdefs"
	"github.com/miekg/dns"
)

// view is one network's records as published: built once from the endpoints,
// never changed afterwards, replaced whole on every update. Readers load it
// with one atomic pointer read and take no lock. The one mutable part, each
// name's rotation counter, is an atomic that never affects another view.
type view struct {
	// suffix is ".<network>." in canonical form, which names may carry.
	suffix string
	// names maps a canonical name ("web.") to the addresses it resolves to.
	names map[string]*addrs
	// askers maps a container's address to what only that container sees.
	askers map[netip.Addr]*asker
	// byName maps a container name to the same askers: a container on
	// several networks is found on the others by its name.
	byName map[string]*asker
	// ptr maps a reverse name ("2.0.18.172.in-addr.arpa.") to its answer.
	ptr map[string]string
}

// addrs are the addresses of one name, sorted, never mutated: a reply rotates
// them into its own slice (or wire buffer), starting at next.
type addrs struct {
	v4, v6 []netip.Addr
	next   atomic.Uint32
}

// start returns where this reply's rotation of n addresses begins.
func (a *addrs) start(n int) int {
	if n < 2 {
		return 0
	}
	return int(a.next.Add(1) % uint32(n))
}

// asker is what a container sees beyond the network's common names.
type asker struct {
	container string            // Endpoint.Container
	links     map[string]string // canonical alias -> canonical target
	search    []string          // canonical search domains ("example.com.")
	upstreams []netip.AddrPort
}

// canonical returns name lowercased and fully qualified: the form of every key.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// checkName reports whether name can be a key of the record set: dot-separated
// labels of 1 to 63 letters, digits, '-' or '_' (container, service and
// network names are all of that kind), 253 characters at most, a trailing dot
// allowed. Nothing that would need escaping in a DNS name gets in, so a key is
// the same string whether it comes from the caller or from a query's labels.
func checkName(what, name string) error {
	bad := fmt.Errorf("%s %q is not a valid DNS name: %w", what, name, errdefs.ErrInvalidArgument)
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return bad
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return bad
		}
		for i := 0; i < len(label); i++ {
			if !nameByte(label[i]) {
				return bad
			}
		}
	}
	return nil
}

// nameByte reports whether c may appear in a label of a name berth owns.
func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// validate checks one endpoint before it enters a record set. Only what
// makes the endpoint meaningless is an error; a name that cannot be a DNS
// name (a network alias with a space, say) is skipped when the records are
// built, so the container still resolves by its other names.
func (ep *Endpoint) validate() error {
	if ep.Container == "" {
		return fmt.Errorf("endpoint without a container name: %w", errdefs.ErrInvalidArgument)
	}
	wrap := func(err error) error { return fmt.Errorf("endpoint %s: %w", ep.Container, err) }
	if !ep.IP.IsValid() {
		return wrap(fmt.Errorf("no address: %w", errdefs.ErrInvalidArgument))
	}
	if ep.IPv6.IsValid() && !ep.IPv6.Is6() {
		return wrap(fmt.Errorf("IPv6 address %s is not IPv6: %w", ep.IPv6, errdefs.ErrInvalidArgument))
	}
	for _, u := range ep.Upstreams {
		if !u.IsValid() {
			return wrap(fmt.Errorf("invalid upstream %s: %w", u, errdefs.ErrInvalidArgument))
		}
	}
	return nil
}

// validName reports whether name can be a key of the record set.
func validName(name string) bool { return checkName("name", name) == nil }

// names lists every name of the endpoint, unsorted, possibly repeated.
func (ep *Endpoint) names() []string {
	out := make([]string, 0, 3+len(ep.Aliases))
	out = append(out, ep.Container)
	if ep.Service != "" {
		out = append(out, ep.Service)
	}
	if ep.Hostname != "" {
		out = append(out, ep.Hostname)
	}
	return append(out, ep.Aliases...)
}

// buildView makes the record set of a network from its endpoints, which the
// caller has validated, leaving out names that cannot be DNS names. It copies
// what it keeps: the caller may reuse eps.
func buildView(network string, eps []Endpoint) *view {
	v := &view{
		suffix: "." + canonical(network),
		names:  make(map[string]*addrs),
		askers: make(map[netip.Addr]*asker),
		byName: make(map[string]*asker),
		ptr:    make(map[string]string),
	}
	ptrTarget := v.suffix
	for i := range eps {
		ep := &eps[i]
		for _, n := range ep.names() {
			if !validName(n) {
				continue
			}
			key := canonical(n)
			a := v.names[key]
			if a == nil {
				a = &addrs{}
				v.names[key] = a
			}
			a.add(ep.IP)
			if ep.IPv6.IsValid() {
				a.add(ep.IPv6)
			}
		}
		target := strings.ToLower(strings.TrimSuffix(ep.Container, ".")) + ptrTarget
		for _, ip := range []netip.Addr{ep.IP, ep.IPv6} {
			if !ip.IsValid() || !validName(ep.Container) {
				continue
			}
			if rev, err := dns.ReverseAddr(ip.String()); err == nil {
				v.ptr[rev] = target
			}
		}
		a := &asker{container: ep.Container, upstreams: slices.Clone(ep.Upstreams)}
		v.byName[ep.Container] = a
		if len(ep.Links) > 0 {
			a.links = make(map[string]string, len(ep.Links))
			for _, l := range ep.Links {
				if validName(l.Alias) && validName(l.Target) {
					a.links[canonical(l.Alias)] = canonical(l.Target)
				}
			}
		}
		for _, d := range ep.Search {
			if validName(d) {
				a.search = append(a.search, canonical(d))
			}
		}
		for _, ip := range []netip.Addr{ep.IP, ep.IPv6} {
			if ip.IsValid() {
				v.askers[ip.Unmap()] = a
			}
		}
	}
	for _, a := range v.names {
		slices.SortFunc(a.v4, netip.Addr.Compare)
		slices.SortFunc(a.v6, netip.Addr.Compare)
	}
	return v
}

// add records ip under the name once.
func (a *addrs) add(ip netip.Addr) {
	ip = ip.Unmap()
	list := &a.v6
	if ip.Is4() {
		list = &a.v4
	}
	if !slices.Contains(*list, ip) {
		*list = append(*list, ip)
	}
}

// lookup finds what name (canonical: lowercase, fully qualified) resolves to
// for the container asking (nil when the source is no known container).
// owned reports a name in the network's own domain (NAME.<network>.), which
// must not be forwarded even when it does not exist.
//
// Order, as Docker's: the asker's link aliases, then the network's names, then
// the same after removing one of the asker's search domains or the network's
// suffix. It takes bytes so that the UDP fast path looks names up without
// allocating (m[string(b)] does not copy).
func (v *view) lookup(a *asker, name []byte) (found *addrs, owned bool) {
	if r := v.exact(a, name); r != nil {
		return r, true
	}
	if a != nil {
		for _, d := range a.search {
			if base, ok := trimDomain(name, d); ok {
				if r := v.exact(a, base); r != nil {
					return r, true
				}
			}
		}
	}
	if base, ok := trimDomain(name, v.suffix[1:]); ok {
		return v.exact(a, base), true
	}
	return nil, false
}

func (v *view) exact(a *asker, name []byte) *addrs {
	if a != nil && a.links != nil {
		if target, ok := a.links[string(name)]; ok {
			if r := v.names[target]; r != nil {
				return r
			}
		}
	}
	return v.names[string(name)]
}

// trimDomain cuts domain ("example.com.") off name ("web.example.com."),
// leaving "web."; ok is false unless name is a strict subdomain of domain.
func trimDomain(name []byte, domain string) ([]byte, bool) {
	cut := len(name) - len(domain)
	if cut < 2 || name[cut-1] != '.' || string(name[cut:]) != domain {
		return nil, false
	}
	return name[:cut], true
}
