// Package network gives every Compose network a Linux bridge and every
// container a network namespace with one interface per network it joins.
//
// Vocabulary (Docker's, as users know it):
//
//   - A Network is a bridge (LinkPrefix(root)+"br"+id) with the gateway
//     address of its subnet, outbound NAT unless it is internal, and isolation
//     from every other network.
//   - A Sandbox is one container's network namespace, made by this package and
//     bind-mounted at Sandbox.Path under the state directory. The container's
//     runtime joins it by path (the OCI spec's linux.namespaces entry of type
//     "network"), so the network is ready, and DNS can answer the container's
//     name, before the container's first process runs. A sandbox also carries
//     the container's published ports: they are reserved on the host when the
//     sandbox is made and forwarded, by kernel DNAT, to the address the
//     sandbox has on its gateway network.
//   - An Endpoint is the attachment of a sandbox to a network: a veth pair
//     whose host end (LinkPrefix(root)+"ve"+id) is a port of the bridge and
//     whose other end is eth0, eth1... inside the sandbox.
//
// Lifecycle, as the container engine drives it for one container:
//
//	sb, err := m.CreateSandbox(SandboxOptions{ID: ctr.ID, Owner: "service web", Ports: ports})
//	ep, err := m.Attach(sb.ID, "proj_default", AttachOptions{Aliases: []string{"web"}})
//	... spec.Linux.Namespaces = append(..., {Type: "network", Path: sb.Path}); start the container
//	... stop the container
//	err = m.DeleteSandbox(sb.ID)   // detaches every endpoint, drops its ports
//
// network_mode "none" is a sandbox with no endpoint (only lo); "host" is no
// sandbox at all (the container keeps the host's namespace); "container:X"
// and "service:X" join X's Sandbox.Path.
//
// All state lives in one directory (ROOT/network): networks/ID.json and
// sandboxes/ID.json, each written atomically, plus netns/ID, the bind mount of
// each sandbox's namespace. Open compares the records with the kernel and
// repairs the difference (see Manager.Repairs): links and namespaces that a
// crash left unrecorded are deleted, recorded ones that vanished are made
// again (bridges, veths) or forgotten (a namespace gone with a reboot). The
// nftables table of the state root (rootid.NFTable) is rebuilt from the
// records in one transaction at every change, so what the kernel holds is a
// function of what is recorded and teardown removes exactly what was added.
package network

import (
	"net/netip"
	"regexp"
	"time"
)

// Driver names.
const (
	DriverBridge = "bridge"
)

// Driver options (Compose driver_opts) that berth understands. Others are
// ignored, as Docker ignores them, except those that name a host object berth
// cannot make (see CreateOptions).
const (
	OptionMTU        = "com.docker.network.driver.mtu"
	OptionMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
	OptionICC        = "com.docker.network.bridge.enable_icc"
	OptionBridgeName = "com.docker.network.bridge.name"
)

// Network is a bridge network, as `berth network inspect` shows it.
type Network struct {
	ID           string                `json:"Id"`
	Name         string                `json:"Name"`
	Driver       string                `json:"Driver"`
	Created      time.Time             `json:"Created"`
	Internal     bool                  `json:"Internal"`
	Subnet       netip.Prefix          `json:"Subnet"`
	Gateway      netip.Addr            `json:"Gateway"`
	IPRange      netip.Prefix          `json:"IPRange,omitzero"`
	AuxAddresses map[string]netip.Addr `json:"AuxAddresses,omitempty"`
	// PoolSubnet says the subnet came from the default pools rather than
	// from ipam.config.
	PoolSubnet bool              `json:"PoolSubnet,omitempty"`
	MTU        int               `json:"MTU"`
	Bridge     string            `json:"Bridge"` // the host interface
	Masquerade bool              `json:"Masquerade"`
	ICC        bool              `json:"ICC"` // containers of the network may talk to each other
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"` // driver_opts as given
}

// CreateOptions describe a new network, in the words of a Compose networks:
// entry.
type CreateOptions struct {
	Name       string
	Driver     string // "" or "bridge"
	Internal   bool
	EnableIPv6 bool // refused for now: IPv6 is not supported yet
	IPAMDriver string
	IPAM       []IPAMConfig // at most one IPv4 entry
	Options    map[string]string
	Labels     map[string]string
}

// IPAMConfig is one entry of Compose's ipam.config, as strings.
type IPAMConfig struct {
	Subnet       string
	Gateway      string
	IPRange      string
	AuxAddresses map[string]string
}

// SandboxOptions describe a new sandbox.
type SandboxOptions struct {
	// ID names the sandbox, usually the container's id; empty: a random one.
	ID string
	// Owner says whose sandbox it is in error messages, e.g. "service web"
	// or "container proj-web-1".
	Owner string
	// Ports to publish. They are reserved on the host before anything is
	// made: a port already taken fails CreateSandbox with ErrConflict.
	Ports []PortMapping
}

// Sandbox is a container's network namespace.
type Sandbox struct {
	ID    string `json:"Id"`
	Owner string `json:"Owner"`
	// Path is the bind mount of the namespace: what the OCI spec's network
	// namespace path, nsenter --net and setns take.
	Path    string          `json:"Path"`
	Ports   []PublishedPort `json:"Ports"`
	Created time.Time       `json:"Created"`
	// Endpoints in the order they were attached.
	Endpoints []Endpoint `json:"Endpoints"`
	// GatewayEndpoint is the ID of the endpoint that holds the default route
	// and receives the published ports; empty when no endpoint leads out
	// (none, or internal networks only).
	GatewayEndpoint string `json:"GatewayEndpoint,omitempty"`
}

// AttachOptions say how a sandbox joins a network (a service's
// networks.NAME entry).
type AttachOptions struct {
	IPv4Address netip.Addr // static address; zero: the next free one
	MACAddress  string     // zero: derived from the address (02:42:a.b.c.d)
	Interface   string     // name inside the sandbox; zero: the first free ethN
	Aliases     []string   // kept for the caller's DNS records
	// GwPriority picks the network that holds the default route: the
	// highest wins, ties go to the first attached.
	GwPriority int
}

// Endpoint is one sandbox's attachment to one network.
type Endpoint struct {
	ID            string       `json:"Id"`
	NetworkID     string       `json:"NetworkId"`
	NetworkName   string       `json:"NetworkName"`
	SandboxID     string       `json:"SandboxId"`
	Owner         string       `json:"Owner"`
	Interface     string       `json:"Interface"`     // inside the sandbox
	HostInterface string       `json:"HostInterface"` // the bridge port
	Address       netip.Prefix `json:"Address"`       // e.g. 10.210.0.2/24
	MAC           string       `json:"MacAddress"`
	// Gateway is the network's gateway, zero on internal networks (no
	// route out).
	Gateway    netip.Addr `json:"Gateway,omitzero"`
	GwPriority int        `json:"GwPriority"`
	Aliases    []string   `json:"Aliases,omitempty"`
	// Seq orders the sandbox's endpoints by attach time.
	Seq uint64 `json:"Seq"`
}

// IP is the endpoint's address.
func (e Endpoint) IP() netip.Addr { return e.Address.Addr() }

// PortMapping is a port to publish: Docker's
// host_ip:host_port[-end]:container_port/protocol.
type PortMapping struct {
	// HostIP zero: every IPv4 address of the host, 127.0.0.1 included.
	HostIP netip.Addr
	// HostPort 0: a random free port. HostPortEnd > HostPort: the first
	// free port of the range.
	HostPort, HostPortEnd uint16
	ContainerPort         uint16
	Protocol              string // "tcp" (default) or "udp"
}

// PublishedPort is a port as published: the host port chosen.
type PublishedPort struct {
	HostIP        netip.Addr `json:"HostIp,omitzero"`
	HostPort      uint16     `json:"HostPort"`
	ContainerPort uint16     `json:"ContainerPort"`
	Protocol      string     `json:"Protocol"`
}

// validName is Docker's rule for network names, and berth's for sandbox ids.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
