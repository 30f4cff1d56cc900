package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// hashVersion is mixed into every hash; bump it when the allow-list below
// changes on purpose, so that the golden hashes change in the same commit.
const hashVersion = "berth.service.v1"

// hashedService is the allow-list of the config hash: the fields of
// Service whose change needs a new container, because the container was
// made from them (its spec, its mounts, its network endpoints, what the
// engine stores with it). It is a separate struct, not Service minus a
// deny-list, so that a field added to Service stays out of the hash (and
// does not recreate every container after an upgrade) until someone
// decides it belongs here.
//
// Left out on purpose:
//   - Name, Replicas: identity and count; scaling adds or removes replicas
//     and leaves the others alone.
//   - Build, PullPolicy: how the image is obtained. A rebuild that yields a
//     new image is seen by comparing image IDs, not by the hash; editing a
//     build arg without rebuilding changes nothing that runs.
//   - DependsOn: start order and gating, done by reconcile.
//   - Develop: watch rules, read by `berth watch`.
//   - Profiles: whether the service is enabled, not how it runs.
//   - ConfigHash itself.
//
// Restart and Healthcheck are in: the engine stores them with the
// container (engine/container.Config). If the engine learns to update them
// in place, they move out.
type hashedService struct {
	ContainerName string            `json:"container_name"`
	Image         string            `json:"image"`
	Platform      string            `json:"platform"`
	Entrypoint    []string          `json:"entrypoint"`
	Command       []string          `json:"command"`
	Environment   map[string]string `json:"environment"`
	WorkingDir    string            `json:"working_dir"`
	User          string            `json:"user"`
	GroupAdd      []string          `json:"group_add"`
	Labels        map[string]string `json:"labels"`
	Hostname      string            `json:"hostname"`
	Domainname    string            `json:"domainname"`
	Tty           bool              `json:"tty"`
	StdinOpen     bool              `json:"stdin_open"`

	Ports       []Port          `json:"ports"`
	Expose      []ContainerPort `json:"expose"`
	Mounts      []Mount         `json:"mounts"`
	Files       []FileMount     `json:"files"`
	VolumesFrom []string        `json:"volumes_from"`

	Networks      []ServiceNetwork `json:"networks"`
	NetworkMode   string           `json:"network_mode"`
	Links         []Link           `json:"links"`
	ExternalLinks []Link           `json:"external_links"`
	DNS           []string         `json:"dns"`
	DNSSearch     []string         `json:"dns_search"`
	DNSOptions    []string         `json:"dns_opt"`
	ExtraHosts    []string         `json:"extra_hosts"`

	Healthcheck     *Healthcheck  `json:"healthcheck"`
	Restart         RestartPolicy `json:"restart"`
	StopSignal      string        `json:"stop_signal"`
	StopGracePeriod time.Duration `json:"stop_grace_period"`
	Init            bool          `json:"init"`

	ReadOnly    bool              `json:"read_only"`
	Privileged  bool              `json:"privileged"`
	CapAdd      []string          `json:"cap_add"`
	CapDrop     []string          `json:"cap_drop"`
	SecurityOpt []string          `json:"security_opt"`
	Ulimits     []Ulimit          `json:"ulimits"`
	Sysctls     map[string]string `json:"sysctls"`
	Devices     []Device          `json:"devices"`
	Resources   Resources         `json:"resources"`
	IPC         string            `json:"ipc"`
	PID         string            `json:"pid"`
	Logging     Logging           `json:"logging"`

	// LinkEnv changes the container's environment.
	LinkEnv bool `json:"link_env"`
}

// ConfigHash is the hex SHA-256 of the service fields that need a new
// container when they change (see hashedService). Maps are hashed with
// sorted keys (encoding/json sorts them), so equal services hash equal.
func ConfigHash(s Service) string {
	h := hashedService{
		ContainerName: s.ContainerName,
		Image:         s.Image,
		Platform:      s.Platform,
		Entrypoint:    s.Entrypoint,
		Command:       s.Command,
		Environment:   s.Environment,
		WorkingDir:    s.WorkingDir,
		User:          s.User,
		GroupAdd:      s.GroupAdd,
		Labels:        s.Labels,
		Hostname:      s.Hostname,
		Domainname:    s.Domainname,
		Tty:           s.Tty,
		StdinOpen:     s.StdinOpen,

		Ports:       s.Ports,
		Expose:      s.Expose,
		Mounts:      s.Mounts,
		Files:       s.Files,
		VolumesFrom: s.VolumesFrom,

		Networks:      s.Networks,
		NetworkMode:   s.NetworkMode,
		Links:         s.Links,
		ExternalLinks: s.ExternalLinks,
		DNS:           s.DNS,
		DNSSearch:     s.DNSSearch,
		DNSOptions:    s.DNSOptions,
		ExtraHosts:    s.ExtraHosts,

		Healthcheck:     s.Healthcheck,
		Restart:         s.Restart,
		StopSignal:      s.StopSignal,
		StopGracePeriod: s.StopGracePeriod,
		Init:            s.Init,

		ReadOnly:    s.ReadOnly,
		Privileged:  s.Privileged,
		CapAdd:      s.CapAdd,
		CapDrop:     s.CapDrop,
		SecurityOpt: s.SecurityOpt,
		Ulimits:     s.Ulimits,
		Sysctls:     s.Sysctls,
		Devices:     s.Devices,
		Resources:   s.Resources,
		IPC:         s.IPC,
		PID:         s.PID,
		Logging:     s.Logging,

		LinkEnv: s.Berth.LinkEnv,
	}
	b, err := json.Marshal(h)
	if err != nil {
		// Only unsupported types fail to marshal, and hashedService has none.
		panic("manifest: config hash: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte(hashVersion+"\n"), b...))
	return hex.EncodeToString(sum[:])
}
