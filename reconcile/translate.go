package reconcile

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/manifest"
)

// Version is written in each container's com.docker.compose.version label.
var Version = "berth"

// ContainerConfig is the engine config of replica n of service s: every
// option of the service, plus the labels that let a later observe find the
// container and compare it with the files. imageID is the image the
// replica is made from.
func ContainerConfig(p *manifest.Project, s manifest.Service, n int, imageID string) (container.Config, error) {
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[LabelProject] = p.Name
	labels[LabelService] = s.Name
	labels[LabelNumber] = strconv.Itoa(n)
	labels[LabelOneOff] = "False"
	labels[LabelConfigHash] = s.ConfigHash
	labels[LabelConfigFields] = encodeFields(FieldHashes(s))
	labels[LabelImage] = imageID
	labels[LabelWorkingDir] = p.WorkingDir
	labels[LabelConfigFiles] = strings.Join(p.ComposeFiles, ",")
	labels[LabelDependsOn] = dependsOnLabel(s)
	labels[LabelVersion] = Version

	cfg := container.Config{
		Name:        p.ContainerName(s.Name, n),
		Image:       s.Image,
		Labels:      labels,
		Entrypoint:  s.Entrypoint,
		Cmd:         s.Command,
		Env:         envList(s.Environment),
		WorkingDir:  s.WorkingDir,
		User:        s.User,
		Hostname:    s.Hostname,
		Domainname:  s.Domainname,
		Tty:         s.Tty,
		OpenStdin:   s.StdinOpen,
		StopSignal:  s.StopSignal,
		Init:        s.Init,
		ReadOnly:    s.ReadOnly,
		Privileged:  s.Privileged,
		CapAdd:      s.CapAdd,
		CapDrop:     s.CapDrop,
		SecurityOpt: s.SecurityOpt,
		Sysctls:     s.Sysctls,
		IpcMode:     serviceMode(p, s.IPC),
		PidMode:     serviceMode(p, s.PID),
		NetworkMode: serviceMode(p, s.NetworkMode),
		DNS:         s.DNS,
		DNSSearch:   s.DNSSearch,
		DNSOptions:  s.DNSOptions,
		ExtraHosts:  s.ExtraHosts,
		LinkEnv:     s.Berth.LinkEnv,
		RestartPolicy: container.RestartPolicy{
			Name: s.Restart.Name, MaximumRetryCount: s.Restart.MaxRetries,
		},
		Log: container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options},
		Resources: container.Resources{
			Memory: s.Resources.MemoryLimit, NanoCPUs: int64(s.Resources.CPUs * 1e9),
			CPUShares: s.Resources.CPUShares, CpusetCpus: s.Resources.CPUSet,
			PidsLimit: s.Resources.PidsLimit, ShmSize: s.Resources.ShmSize,
		},
	}
	if s.StopGracePeriod > 0 {
		grace := s.StopGracePeriod
		cfg.StopTimeout = &grace
	}
	if cfg.Hostname == "" && s.ContainerName == "" {
		// Compose leaves the hostname to the engine (the short id); DNS
		// answers the container name and the service name anyway.
		cfg.Hostname = ""
	}
	for _, u := range s.Ulimits {
		cfg.Ulimits = append(cfg.Ulimits, container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, d := range s.Devices {
		cfg.Devices = append(cfg.Devices, container.Device{PathOnHost: d.Source, PathInContainer: d.Target, CgroupPermissions: d.Permissions})
	}
	for _, port := range s.Expose {
		cfg.ExposedPorts = append(cfg.ExposedPorts, container.Port{Port: port.Port, Protocol: port.Protocol})
	}
	for _, port := range s.Ports {
		cfg.ExposedPorts = append(cfg.ExposedPorts, container.Port{Port: port.Target, Protocol: port.Protocol})
		cfg.PortBindings = append(cfg.PortBindings, container.PortBinding{
			HostIP: port.HostIP, HostPort: port.PublishedStart, HostPortEnd: port.PublishedEnd,
			ContainerPort: port.Target, Protocol: port.Protocol,
		})
	}
	for _, m := range s.Mounts {
		cfg.Mounts = append(cfg.Mounts, container.Mount{
			Type: container.MountType(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly,
			CreateHostPath: m.CreateHostPath, Propagation: m.Propagation, NoCopy: m.NoCopy,
			TmpfsSize: m.TmpfsSize, TmpfsMode: m.TmpfsMode,
		})
	}
	for _, f := range s.Files {
		if f.Source != "" {
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: f.Source, Target: f.Target, ReadOnly: true})
			continue
		}
		// content: and environment: sources: a file of the container's
		// own, with uid, gid and mode as docker compose applies them.
		file := container.File{Target: f.Target, Content: []byte(f.Content)}
		var err error
		if file.UID, err = numericID(f.UID); err != nil {
			return cfg, fmt.Errorf("service %s: %ss.%s.uid: %w", s.Name, f.Kind, f.Name, err)
		}
		if file.GID, err = numericID(f.GID); err != nil {
			return cfg, fmt.Errorf("service %s: %ss.%s.gid: %w", s.Name, f.Kind, f.Name, err)
		}
		if f.Mode != nil {
			if *f.Mode < 0 || *f.Mode > 0o7777 {
				return cfg, fmt.Errorf("service %s: %ss.%s.mode: %o is not a file mode", s.Name, f.Kind, f.Name, *f.Mode)
			}
			file.Mode = uint32(*f.Mode)
		}
		cfg.Files = append(cfg.Files, file)
	}
	for _, net := range s.Networks {
		cfg.Networks = append(cfg.Networks, container.Attachment{
			Network: net.Name, Aliases: net.Aliases, IPv4Address: net.IPv4Address,
			MacAddress: net.MacAddress, Priority: net.Priority,
		})
	}
	for _, l := range s.Links {
		cfg.Links = append(cfg.Links, container.Link{Container: p.ContainerName(l.Service, 1), Alias: l.Alias})
	}
	for _, l := range s.ExternalLinks {
		cfg.Links = append(cfg.Links, container.Link{Container: l.Container, Alias: l.Alias})
	}
	if h := s.Healthcheck; h != nil {
		hc := &container.Healthcheck{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval,
		}
		if h.Disable {
			hc = &container.Healthcheck{Test: []string{"NONE"}}
		}
		cfg.Healthcheck = hc
	}
	return cfg, nil
}

// serviceMode turns service:NAME (network_mode, ipc, pid) into
// container:NAME of that service's first replica.
func serviceMode(p *manifest.Project, mode string) string {
	if name, ok := strings.CutPrefix(mode, "service:"); ok {
		return "container:" + p.ContainerName(name, 1)
	}
	return mode
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// dependsOnLabel is compose's com.docker.compose.depends_on value:
// "db:service_healthy:false,cache:service_started:true".
func dependsOnLabel(s manifest.Service) string {
	var parts []string
	for _, name := range sortedDeps(s) {
		d := s.DependsOn[name]
		parts = append(parts, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	return strings.Join(parts, ",")
}

// stopTimeout is the grace a service's containers get when stopped: the
// user's -t, else stop_grace_period, else 10s.
func stopTimeout(s manifest.Service, override *time.Duration) *time.Duration {
	if override != nil {
		return override
	}
	if s.StopGracePeriod > 0 {
		g := s.StopGracePeriod
		return &g
	}
	return nil
}

// numericID is a Compose uid or gid: a number, or empty for root.
func numericID(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return n, nil
}
