// Package manifest turns Compose files into berth's desired state.
//
// compose-go does the reading, exactly as docker compose v5 does it (file
// discovery, several -f merged in order, .env and --env-file, interpolation,
// profiles, extends, include, the project-name rules); this package then
// converts compose-go's types.Project into berth's own model, a Project of
// Services, Networks and Volumes with every name, path and default resolved,
// and gives each Service a ConfigHash.
//
// The model is plain data with stable JSON field names: the CLI loads the
// files (it has the user's directory, environment and .env) and sends the
// Project to the daemon over the API socket. Nothing in it points back at
// compose-go, except the unexported copy of the loaded Compose project that
// Render prints, which stays on the side that loaded the files.
//
// Vocabulary: a service runs as Replicas containers (replicas), numbered
// from 1, named ContainerName(service, n). Its ConfigHash changes exactly
// when a running replica would have to be recreated; see hash.go for the
// allow-list of fields it covers.
package manifest

import (
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// Project is the desired state of one Compose project.
type Project struct {
	// Name is the project name (-p, COMPOSE_PROJECT_NAME, top-level name:,
	// or the project directory's name), normalised as docker compose does.
	Name string `json:"name"`
	// WorkingDir is the project directory: relative paths were resolved
	// against it.
	WorkingDir string `json:"working_dir"`
	// ComposeFiles are the files that were merged, in order ("-" is stdin).
	ComposeFiles []string `json:"compose_files"`
	// EnvFiles are the files that filled the interpolation environment.
	EnvFiles []string `json:"env_files,omitempty"`
	// Profiles are the active profiles.
	Profiles []string `json:"profiles,omitempty"`

	// Services are the enabled services, by name.
	Services map[string]Service `json:"services"`
	// Networks are the networks the services use, by Compose key
	// ("default" for the implicit one).
	Networks map[string]Network `json:"networks,omitempty"`
	// Volumes are the named volumes the services use, by Compose key.
	Volumes map[string]Volume `json:"volumes,omitempty"`

	// DeclaredProfiles are all the profiles the services name, active or
	// not, sorted (`berth config --profiles`).
	DeclaredProfiles []string `json:"declared_profiles,omitempty"`

	// compose is what compose-go loaded, for Render. It does not cross the
	// API socket.
	compose *types.Project
}

// Service is one service of the project: how many replicas to run and
// everything a replica's container is made from, resolved.
type Service struct {
	Name string `json:"name"`
	// Replicas is the number of containers to run: scale:, deploy.replicas,
	// or 1; Project.Scale overrides it (--scale).
	Replicas int `json:"replicas"`
	// ContainerName is the user's container_name; empty means
	// PROJECT-SERVICE-N (see Project.ContainerName).
	ContainerName string `json:"container_name,omitempty"`

	// Image is what the replicas run: image:, or for a service that is
	// only built, the name docker compose gives the built image
	// (PROJECT-SERVICE).
	Image      string `json:"image"`
	Build      *Build `json:"build,omitempty"`
	PullPolicy string `json:"pull_policy,omitempty"`
	Platform   string `json:"platform,omitempty"`

	// Entrypoint and Command: nil keeps the image's; empty clears it.
	Entrypoint []string `json:"entrypoint"`
	Command    []string `json:"command"`
	// Environment is environment: with env_file: merged in and variables
	// without a value left out, as docker compose passes it.
	Environment map[string]string `json:"environment,omitempty"`
	WorkingDir  string            `json:"working_dir,omitempty"`
	User        string            `json:"user,omitempty"`
	GroupAdd    []string          `json:"group_add,omitempty"`
	// Labels are the user's labels (label_file: merged in); berth adds its
	// own (project, service, replica, config hash) when it creates a
	// container.
	Labels     map[string]string `json:"labels,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	Domainname string            `json:"domainname,omitempty"`
	Tty        bool              `json:"tty,omitempty"`
	StdinOpen  bool              `json:"stdin_open,omitempty"`

	Ports  []Port          `json:"ports,omitempty"`
	Expose []ContainerPort `json:"expose,omitempty"`

	// Mounts are volumes: then tmpfs:, in the order written.
	Mounts []Mount `json:"mounts,omitempty"`
	// Files are the secrets and configs the service reads as files.
	Files       []FileMount `json:"files,omitempty"`
	VolumesFrom []string    `json:"volumes_from,omitempty"`

	// Networks are the networks a replica joins, highest priority first
	// (it carries the default route). Empty when NetworkMode is set.
	Networks []ServiceNetwork `json:"networks,omitempty"`
	// NetworkMode is network_mode: none, host, service:NAME or
	// container:NAME; empty means the Networks above.
	NetworkMode   string   `json:"network_mode,omitempty"`
	Links         []Link   `json:"links,omitempty"`
	ExternalLinks []Link   `json:"external_links,omitempty"`
	DNS           []string `json:"dns,omitempty"`
	DNSSearch     []string `json:"dns_search,omitempty"`
	DNSOptions    []string `json:"dns_opt,omitempty"`
	// ExtraHosts are extra_hosts: as HOST:IP, in the order written.
	ExtraHosts []string `json:"extra_hosts,omitempty"`

	// DependsOn are the services this one waits for, by name (links:,
	// volumes_from: and network_mode: service:X add to it, as in compose).
	DependsOn map[string]Dependency `json:"depends_on,omitempty"`

	// Healthcheck is nil when the service keeps the image's healthcheck.
	Healthcheck     *Healthcheck  `json:"healthcheck,omitempty"`
	Restart         RestartPolicy `json:"restart"`
	StopSignal      string        `json:"stop_signal,omitempty"`
	StopGracePeriod time.Duration `json:"stop_grace_period"` // 10s unless set
	Init            bool          `json:"init,omitempty"`

	ReadOnly    bool              `json:"read_only,omitempty"`
	Privileged  bool              `json:"privileged,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
	CapDrop     []string          `json:"cap_drop,omitempty"`
	SecurityOpt []string          `json:"security_opt,omitempty"`
	Ulimits     []Ulimit          `json:"ulimits,omitempty"`
	Sysctls     map[string]string `json:"sysctls,omitempty"`
	Devices     []Device          `json:"devices,omitempty"`
	Resources   Resources         `json:"resources,omitzero"`
	IPC         string            `json:"ipc,omitempty"`
	PID         string            `json:"pid,omitempty"`
	Logging     Logging           `json:"logging,omitzero"`

	// Develop is develop: (watch rules), for `berth watch`.
	Develop *Develop `json:"develop,omitempty"`
	// Profiles are the profiles that enable the service; none means always.
	Profiles []string `json:"profiles,omitempty"`
	// Berth is the service's x-berth: block (see Extension).
	Berth Extension `json:"x-berth,omitzero"`

	// ConfigHash is ConfigHash(this service), set when the project is
	// loaded. berth labels each container with it.
	ConfigHash string `json:"config_hash"`
}

// Extension is a service's `x-berth:` block: berth's own options, which
// docker compose ignores as it ignores every x- key.
//
//	services:
//	  web:
//	    x-berth:
//	      link_env: true
type Extension struct {
	// LinkEnv opts the service into the legacy link environment variables
	// (DB_PORT=tcp://10.0.0.2:5432, DB_NAME=/web/db, ...) for its links:.
	// They are off by default because they collide with applications' own
	// variables.
	LinkEnv bool `json:"link_env,omitempty"`
}

// Build is a service's build: section, paths absolute.
type Build struct {
	Context          string `json:"context"`
	Dockerfile       string `json:"dockerfile,omitempty"`
	DockerfileInline string `json:"dockerfile_inline,omitempty"`
	// Args are the build args with a value (ARGs without one are left to
	// the Dockerfile's default, as docker compose does).
	Args               map[string]string `json:"args,omitempty"`
	Target             string            `json:"target,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	Tags               []string          `json:"tags,omitempty"`
	NoCache            bool              `json:"no_cache,omitempty"`
	Pull               bool              `json:"pull,omitempty"`
	Network            string            `json:"network,omitempty"`
	ExtraHosts         []string          `json:"extra_hosts,omitempty"`
	ShmSize            int64             `json:"shm_size,omitempty"`
	AdditionalContexts map[string]string `json:"additional_contexts,omitempty"`
	CacheFrom          []string          `json:"cache_from,omitempty"`
	Platforms          []string          `json:"platforms,omitempty"`
	// Secrets are what RUN --mount=type=secret reads, by id.
	Secrets []BuildSecret `json:"secrets,omitempty"`
}

// BuildSecret is a top-level secret given to a build under an id (the
// reference's target, else the secret's name).
type BuildSecret struct {
	ID      string `json:"id"`
	File    string `json:"file,omitempty"`    // read when the build runs
	Content string `json:"content,omitempty"` // from environment:
}

// Port publishes a container port (or a range of them) on the host.
type Port struct {
	// HostIP is the host address to listen on; empty means all.
	HostIP string `json:"host_ip,omitempty"`
	// PublishedStart..PublishedEnd is the host port range; 0..0 means any
	// free port. A single port has PublishedStart == PublishedEnd.
	PublishedStart uint16 `json:"published_start,omitempty"`
	PublishedEnd   uint16 `json:"published_end,omitempty"`
	Target         uint16 `json:"target"`
	Protocol       string `json:"protocol"` // tcp or udp
	Name           string `json:"name,omitempty"`
	AppProtocol    string `json:"app_protocol,omitempty"`
}

// ContainerPort is an exposed port: 80/tcp.
type ContainerPort struct {
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
}

// MountType says what a mount's source is.
type MountType string

const (
	// MountBind mounts a host path.
	MountBind MountType = "bind"
	// MountVolume mounts a named volume, or an anonymous one (no Source).
	MountVolume MountType = "volume"
	// MountTmpfs mounts a fresh tmpfs.
	MountTmpfs MountType = "tmpfs"
)

// Mount is one filesystem a replica sees.
type Mount struct {
	Type MountType `json:"type"`
	// Source is the absolute host path (bind), the volume's engine name
	// (named volume, e.g. myapp_data), or empty (anonymous volume, tmpfs).
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// CreateHostPath makes a missing bind source as a directory
	// (create_host_path, true unless set false).
	CreateHostPath bool   `json:"create_host_path,omitempty"`
	Propagation    string `json:"propagation,omitempty"`
	SELinux        string `json:"selinux,omitempty"`
	// NoCopy keeps an empty volume empty instead of filling it from the image.
	NoCopy  bool   `json:"nocopy,omitempty"`
	Subpath string `json:"subpath,omitempty"`
	// TmpfsSize is in bytes, 0 for the kernel's default; TmpfsMode 0 for 1777.
	TmpfsSize int64  `json:"tmpfs_size,omitempty"`
	TmpfsMode uint32 `json:"tmpfs_mode,omitempty"`
	// TmpfsOptions are other tmpfs: options (noexec, uid=1000, ...).
	TmpfsOptions []string `json:"tmpfs_options,omitempty"`
}

// FileMount is a secret or config that a replica reads as a file.
type FileMount struct {
	// Kind is "secret" or "config".
	Kind string `json:"kind"`
	// Name is the top-level secret or config it comes from.
	Name string `json:"name"`
	// Source is the host file (file:); empty when Content is used.
	Source string `json:"source,omitempty"`
	// Content comes from environment: or content:.
	Content string `json:"content,omitempty"`
	// Target is the absolute path in the container
	// (/run/secrets/NAME for secrets, /NAME for configs, unless set).
	Target string `json:"target"`
	UID    string `json:"uid,omitempty"`
	GID    string `json:"gid,omitempty"`
	Mode   *int64 `json:"mode,omitempty"`
}

// ServiceNetwork is a network a replica joins.
type ServiceNetwork struct {
	// Key is the network's key in the Compose file (Project.Networks).
	Key string `json:"key"`
	// Name is its engine name (myapp_default).
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases,omitempty"`
	IPv4Address string   `json:"ipv4_address,omitempty"`
	MacAddress  string   `json:"mac_address,omitempty"`
	// Priority orders the networks; the highest carries the default route.
	Priority int `json:"priority,omitempty"`
}

// Link makes another service (or an external container) reachable under
// an alias: links: [db:database].
type Link struct {
	// Service is the linked service (links:); Container the linked
	// container (external_links:). One of them is set.
	Service   string `json:"service,omitempty"`
	Container string `json:"container,omitempty"`
	Alias     string `json:"alias"`
}

// Dependency condition values, as Compose spells them.
const (
	ConditionStarted   = "service_started"
	ConditionHealthy   = "service_healthy"
	ConditionCompleted = "service_completed_successfully"
)

// Dependency is one depends_on: entry.
type Dependency struct {
	Condition string `json:"condition"`
	// Required false lets the service start when the dependency is not
	// there (disabled by a profile, say).
	Required bool `json:"required"`
	// Restart restarts this service when the dependency is restarted.
	Restart bool `json:"restart,omitempty"`
}

// Healthcheck is a service's healthcheck:, with docker's defaults filled
// in (interval 30s, timeout 30s, retries 3, start_interval 5s; a 0 in the
// file means the default, as for docker).
type Healthcheck struct {
	// Test is CMD args..., CMD-SHELL command, or nil to keep the image's
	// test while changing its timings.
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	Retries       int           `json:"retries,omitempty"`
	StartPeriod   time.Duration `json:"start_period,omitempty"`
	StartInterval time.Duration `json:"start_interval,omitempty"`
	// Disable turns off the image's healthcheck too (disable: true, or
	// test: [NONE]).
	Disable bool `json:"disable,omitempty"`
}

// Restart policy names, as docker spells them.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy is restart: (or deploy.restart_policy, which wins as in
// docker compose).
type RestartPolicy struct {
	Name string `json:"name"` // no, always, on-failure, unless-stopped
	// MaxRetries bounds on-failure restarts; 0 is unbounded.
	MaxRetries int `json:"max_retries,omitempty"`
}

// Ulimit is one rlimit; Soft == Hard for the single-value form.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Device is a host device made available in the container.
type Device struct {
	Source      string `json:"source"`
	Target      string `json:"target"`
	Permissions string `json:"permissions,omitempty"` // rwm
}

// Resources are the cgroup limits. mem_limit, cpus and pids_limit or their
// deploy.resources.limits counterparts (compose-go refuses distinct values).
type Resources struct {
	MemoryLimit       int64   `json:"memory_limit,omitempty"` // bytes
	MemoryReservation int64   `json:"memory_reservation,omitempty"`
	MemorySwapLimit   int64   `json:"memswap_limit,omitempty"`
	CPUs              float64 `json:"cpus,omitempty"`
	CPUShares         int64   `json:"cpu_shares,omitempty"`
	CPUSet            string  `json:"cpuset,omitempty"`
	PidsLimit         int64   `json:"pids_limit,omitempty"`
	ShmSize           int64   `json:"shm_size,omitempty"` // bytes of /dev/shm
}

// Logging is logging:; an empty Driver means berth's default.
type Logging struct {
	Driver  string            `json:"driver,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

// Develop is develop:.
type Develop struct {
	Watch []WatchRule `json:"watch,omitempty"`
}

// WatchRule is one develop.watch entry.
type WatchRule struct {
	Path        string   `json:"path"` // absolute
	Action      string   `json:"action"`
	Target      string   `json:"target,omitempty"`
	Include     []string `json:"include,omitempty"`
	Ignore      []string `json:"ignore,omitempty"`
	InitialSync bool     `json:"initial_sync,omitempty"`
	// Exec is the command of a sync+exec rule.
	Exec []string `json:"exec,omitempty"`
}

// Network is a top-level network.
type Network struct {
	// Key is the network's key in the Compose file.
	Key string `json:"key"`
	// Name is the engine name: name:, or PROJECT_KEY, or KEY when external.
	Name       string            `json:"name"`
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
	IPAM       IPAM              `json:"ipam,omitzero"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	// External networks are not created or removed by berth.
	External   bool              `json:"external,omitempty"`
	EnableIPv6 bool              `json:"enable_ipv6,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// IPAM is a network's address management.
type IPAM struct {
	Driver string     `json:"driver,omitempty"`
	Config []IPAMPool `json:"config,omitempty"`
}

// IPAMPool is one subnet of a network.
type IPAMPool struct {
	Subnet       string            `json:"subnet,omitempty"`
	Gateway      string            `json:"gateway,omitempty"`
	IPRange      string            `json:"ip_range,omitempty"`
	AuxAddresses map[string]string `json:"aux_addresses,omitempty"`
}

// Volume is a top-level named volume.
type Volume struct {
	Key        string            `json:"key"`
	Name       string            `json:"name"` // engine name: name:, PROJECT_KEY, or KEY when external
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
	External   bool              `json:"external,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}
