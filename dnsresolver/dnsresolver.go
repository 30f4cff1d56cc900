// Package dnsresolver is berth's embedded DNS server: how services find each
// other by name.
//
// One Server lives in the daemon. Each network gets its own UDP and TCP
// listener on the network's gateway address, port 53, and containers on that
// network have that address as their only nameserver. A query is answered from
// the view of the network it arrived on and of the container that asked
// (found by the query's source address):
//
//	service name           -> every running replica's address, rotated per query
//	container name, hostname,
//	network alias, project-service-N, NAME.<network>
//	                       -> that container's address
//	link alias             -> the link target, for the linking container only
//	PTR of a container IP  -> "<container>.<network>."
//	AAAA of an IPv4-only name -> NOERROR, empty answer (not NXDOMAIN)
//	anything else          -> forwarded to the upstream resolvers (the host's, or
//	                          the container's own from Compose `dns:`)
//
// A container attached to several networks also resolves, through whichever
// listener it asks, the names of its other networks (as with Docker); a
// container never resolves names of a network it is not on.
//
// The package knows nothing of Compose: it is fed Endpoints (one per container
// per network) by the daemon, and it never reads engine state itself.
//
// Records are immutable once published: every change builds a new record set
// and swaps it in atomically, so a query never sees half an update and never
// takes a lock.
package dnsresolver

import (
	"net/netip"
	"time"
)

// DefaultPort is the port every network listener uses unless told otherwise:
// resolv.conf has no way to name another.
const DefaultPort = 53

// DefaultTTL is the time to live of the answers berth makes itself.
//
// Docker answers with 600 s, which lets a caching client (nscd, dnsmasq,
// systemd-resolved, nginx's resolver) keep the address of a replica that was
// stopped or recreated for ten minutes. berth's records change the moment a
// container starts or stops, and the resolver sits next to its clients
// (answers take tens of microseconds), so a short TTL costs nothing and keeps
// caches close to the truth. 5 s is what CoreDNS uses for Kubernetes names.
const DefaultTTL = 5 * time.Second

// DefaultUpstreamTimeout bounds one try of one upstream resolver. glibc gives a
// nameserver 5 s per try; berth must fail over to the next upstream well
// before the client gives up on berth.
const DefaultUpstreamTimeout = 2 * time.Second

// DefaultResolvConf is where the host's upstream resolvers are read from.
const DefaultResolvConf = "/etc/resolv.conf"

// Config tunes a Server. The zero value is ready to use: the host's resolvers
// from /etc/resolv.conf, DefaultTTL, DefaultUpstreamTimeout.
type Config struct {
	// Upstreams are the resolvers that names berth does not own are forwarded
	// to, tried in order. Nil means the nameservers of ResolvConf (port 53),
	// re-read when that file changes.
	Upstreams []netip.AddrPort
	// ResolvConf is the host file upstreams are read from when Upstreams is
	// nil; DefaultResolvConf when empty.
	ResolvConf string
	// TTL of berth's own answers; DefaultTTL when zero.
	TTL time.Duration
	// UpstreamTimeout bounds one try of one upstream; DefaultUpstreamTimeout
	// when zero.
	UpstreamTimeout time.Duration
	// Sockets is the number of UDP sockets per listener (SO_REUSEPORT spreads
	// queries over them, one reader each); the number of CPUs when zero.
	Sockets int
}

// Network is one listener: where it listens and whom it serves.
type Network struct {
	// Name is the network's name. "NAME.<Name>" resolves like NAME, and PTR
	// answers end with it, as with Docker.
	Name string
	// Gateway is the address the listener binds: the network's gateway, which
	// containers have as their nameserver. It need not be configured yet
	// (IP_FREEBIND); queries arrive once it is.
	Gateway netip.Addr
	// Subnet is the network's address range. Queries from sources outside it
	// are refused, so the resolver is never open to other networks or hosts.
	// A listener on a loopback address also serves loopback sources.
	Subnet netip.Prefix
	// Port is DefaultPort when zero.
	Port uint16
}

// Endpoint is one container's presence on one network: its address there and
// every name that leads to it. The daemon builds them from the container's
// config; all names are matched case-insensitively, with or without a
// trailing dot. A name that cannot be a DNS name (labels of letters, digits,
// '-' and '_') is left out rather than failing the endpoint: nobody could
// ask for it.
type Endpoint struct {
	// Container is the container's name ("proj-web-1"); it identifies the
	// endpoint within the network, and the container across networks (give
	// the same name on each), and resolves to its address. PTR queries for the
	// address answer "<Container>.<network>.".
	Container string
	// IP is the container's address on the network (IPv4 normally).
	IP netip.Addr
	// IPv6 is the container's IPv6 address on the network, if it has one; AAAA
	// queries answer it.
	IPv6 netip.Addr
	// Service is the name every replica of a service shares ("web"): it
	// resolves to all of them, in an order rotated per query.
	Service string
	// Hostname is the container's hostname.
	Hostname string
	// Aliases are further names: network aliases, the short container ID.
	// Like Service, an alias several endpoints carry resolves to all of them.
	Aliases []string
	// Links are names only this container can resolve (Compose `links`).
	Links []Link
	// Upstreams, when set, replace the server's upstream resolvers for queries
	// from this container (Compose `dns:`, as Docker does on user-defined
	// networks: its resolver stays the nameserver and forwards to these).
	Upstreams []netip.AddrPort
	// Search are the container's search domains (Compose `dns_search`): from
	// this container, NAME.DOMAIN is answered like NAME when NAME is known, so
	// a search-list walk never leaves berth for a local name.
	Search []string
}

// Link makes Alias resolve, for the linking container only, to whatever
// Target resolves to on the network at the time of the query, so the alias
// follows the target when it is recreated or scaled.
type Link struct {
	Alias  string // the name the linking container uses ("db")
	Target string // a service or container name on the network ("postgres")
}
