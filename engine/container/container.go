// Package container is the managed container of berth's engine: an image
// plus options turned into a runtime-spec bundle whose rootfs is an overlay
// of the image's snapshots and a per-container upper dir, run under the
// state root's monitor, with its network sandbox, volumes, logs, restart
// policy and healthcheck.
//
// Vocabulary: a container is created (record, bundle, writable layer),
// started (rootfs mounted, sandbox attached, process running under the
// monitor), and when its process ends it is exited; the restart policy may
// start it again. Removing it deletes all of that. Its state moves only along
// the transitions in state.go.
//
// Records live in ROOT/containers/ID/container.json, written atomically; the
// monitor writes ROOT/containers/ID/exit.json when the process ends, so the
// daemon can be killed at any moment and learn on restart what happened.
package container

import (
	"time"
)

// Config is what a container is made from: docker's container and host
// config, in berth's words. Nil slices mean "the image's default"; empty
// non-nil slices mean "none".
type Config struct {
	Name   string            `json:"Name"`
	Image  string            `json:"Image"` // reference or ID
	Labels map[string]string `json:"Labels,omitempty"`

	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env,omitempty"` // KEY=VALUE, over the image's
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
	Hostname   string   `json:"Hostname,omitempty"`
	Domainname string   `json:"Domainname,omitempty"`
	Tty        bool     `json:"Tty,omitempty"`
	OpenStdin  bool     `json:"OpenStdin,omitempty"`
	// StdinOnce closes the container's stdin when the first attached
	// client's input ends (run -i), so the process reads EOF.
	StdinOnce bool `json:"StdinOnce,omitempty"`

	StopSignal  string         `json:"StopSignal,omitempty"`
	StopTimeout *time.Duration `json:"StopTimeout,omitempty"` // default 10s
	Init        bool           `json:"Init,omitempty"`

	ReadOnly    bool              `json:"ReadOnly,omitempty"`
	Privileged  bool              `json:"Privileged,omitempty"`
	CapAdd      []string          `json:"CapAdd,omitempty"`
	CapDrop     []string          `json:"CapDrop,omitempty"`
	SecurityOpt []string          `json:"SecurityOpt,omitempty"` // seccomp=unconfined, no-new-privileges[:true]
	Ulimits     []Ulimit          `json:"Ulimits,omitempty"`
	Sysctls     map[string]string `json:"Sysctls,omitempty"`
	Devices     []Device          `json:"Devices,omitempty"`
	Resources   Resources         `json:"Resources,omitzero"`
	IpcMode     string            `json:"IpcMode,omitempty"` // "", private, shareable, host, container:ID
	PidMode     string            `json:"PidMode,omitempty"` // "", host, container:ID

	Mounts []Mount `json:"Mounts,omitempty"`
	// Files are given contents (Compose secrets and configs from content:
	// or environment:), written at each start and mounted read-only.
	Files []File `json:"Files,omitempty"`

	NetworkMode  string        `json:"NetworkMode,omitempty"` // bridge (default: Networks), none, host, container:ID
	Networks     []Attachment  `json:"Networks,omitempty"`
	ExposedPorts []Port        `json:"ExposedPorts,omitempty"`
	PortBindings []PortBinding `json:"PortBindings,omitempty"`
	DNS          []string      `json:"Dns,omitempty"`
	DNSSearch    []string      `json:"DnsSearch,omitempty"`
	DNSOptions   []string      `json:"DnsOptions,omitempty"`
	ExtraHosts   []string      `json:"ExtraHosts,omitempty"` // host:ip
	Links        []Link        `json:"Links,omitempty"`
	// LinkEnv sets the legacy link environment variables (ALIAS_PORT=...).
	LinkEnv bool `json:"LinkEnv,omitempty"`

	RestartPolicy RestartPolicy `json:"RestartPolicy,omitzero"`
	// AutoRemove removes the container (and its anonymous volumes) once
	// it exited and its restart policy does not start it again (run --rm).
	AutoRemove  bool         `json:"AutoRemove,omitempty"`
	Log         LogConfig    `json:"LogConfig,omitzero"`
	Healthcheck *Healthcheck `json:"Healthcheck,omitempty"`
}

// Ulimit is one rlimit.
type Ulimit struct {
	Name string `json:"Name"` // nofile, nproc, ...
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// Device is a host device made available in the container.
type Device struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"` // rwm
}

// Resources are the cgroup limits.
type Resources struct {
	Memory      int64  `json:"Memory,omitempty"`      // bytes
	NanoCPUs    int64  `json:"NanoCpus,omitempty"`    // cpus * 1e9
	CPUShares   int64  `json:"CpuShares,omitempty"`   // relative weight
	CpusetCpus  string `json:"CpusetCpus,omitempty"`  // "0-1"
	PidsLimit   int64  `json:"PidsLimit,omitempty"`   // 0: default
	ShmSize     int64  `json:"ShmSize,omitempty"`     // bytes of /dev/shm; 0: 64 MiB
	BlkioWeight uint16 `json:"BlkioWeight,omitempty"` // 10-1000
}

// MountType is how a mount's source is found.
type MountType string

const (
	MountBind   MountType = "bind"
	MountVolume MountType = "volume" // named, or anonymous when Source is empty
	MountTmpfs  MountType = "tmpfs"
)

// Mount is one filesystem mounted into the container.
type Mount struct {
	Type     MountType `json:"Type"`
	Source   string    `json:"Source,omitempty"` // host path (bind) or volume name
	Target   string    `json:"Target"`
	ReadOnly bool      `json:"ReadOnly,omitempty"`
	// Bind: create the source directory when missing (Compose's create_host_path).
	CreateHostPath bool   `json:"CreateHostPath,omitempty"`
	Propagation    string `json:"Propagation,omitempty"`
	// Volume: do not fill an empty volume with the image's content.
	NoCopy bool `json:"NoCopy,omitempty"`
	// Tmpfs: size in bytes and mode.
	TmpfsSize int64  `json:"TmpfsSize,omitempty"`
	TmpfsMode uint32 `json:"TmpfsMode,omitempty"`
}

// File is a file the container gets with a given content, owner and mode.
type File struct {
	Target  string `json:"Target"`
	Content []byte `json:"Content"`
	UID     int    `json:"UID,omitempty"`
	GID     int    `json:"GID,omitempty"`
	Mode    uint32 `json:"Mode,omitempty"` // 0: 0444, as docker compose gives
}

// Attachment connects the container to a network.
type Attachment struct {
	Network     string   `json:"Network"`
	Aliases     []string `json:"Aliases,omitempty"`
	IPv4Address string   `json:"IPv4Address,omitempty"`
	MacAddress  string   `json:"MacAddress,omitempty"`
	Priority    int      `json:"Priority,omitempty"` // the highest carries the default route
}

// Port is a container port and protocol: 80/tcp.
type Port struct {
	Port     uint16 `json:"Port"`
	Protocol string `json:"Protocol"` // tcp or udp
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	HostIP   string `json:"HostIp,omitempty"`
	HostPort uint16 `json:"HostPort,omitempty"` // 0: any free port
	// HostPortEnd > HostPort: the first free port of the range.
	HostPortEnd   uint16 `json:"HostPortEnd,omitempty"`
	ContainerPort uint16 `json:"ContainerPort"`
	Protocol      string `json:"Protocol"`
}

// Link makes another container reachable by an alias (links: svc:alias).
type Link struct {
	Container string `json:"Container"` // name or ID of the target
	Alias     string `json:"Alias"`
}

// RestartPolicy says when the engine starts an exited container again.
type RestartPolicy struct {
	Name              string `json:"Name,omitempty"` // no, always, on-failure, unless-stopped
	MaximumRetryCount int    `json:"MaximumRetryCount,omitempty"`
}

// LogConfig is Compose's logging: only json-file (and its options) here.
type LogConfig struct {
	Type   string            `json:"Type,omitempty"`
	Config map[string]string `json:"Config,omitempty"`
}

// Healthcheck is how the engine probes the container.
type Healthcheck struct {
	Test          []string      `json:"Test"` // CMD args..., CMD-SHELL cmd, or NONE
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}
