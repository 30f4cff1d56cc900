package manifest

import (
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// Defaults docker applies where a Compose file says nothing.
const (
	defaultStopGracePeriod = 10 * time.Second
	defaultHealthInterval  = 30 * time.Second
	defaultHealthTimeout   = 30 * time.Second
	defaultHealthRetries   = 3
	defaultStartInterval   = 5 * time.Second
	// nameSeparator joins project, service and replica number in container
	// and image names (docker compose's api.Separator).
	nameSeparator = "-"
)

// convert turns a loaded compose-go project into berth's model. Every
// problem is reported (errors.Join), each naming its service and key.
func convert(cp *types.Project, srcs sources) (*Project, error) {
	p := &Project{
		Name:         cp.Name,
		WorkingDir:   cp.WorkingDir,
		ComposeFiles: slices.Clone(cp.ComposeFiles),
		Profiles:     sortedSet(cp.Profiles),
		Services:     map[string]Service{},
		compose:      cp,
	}
	var errs []error
	for _, key := range cp.NetworkNames() {
		n, err := convertNetwork(key, cp.Networks[key], srcs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.Networks == nil {
			p.Networks = map[string]Network{}
		}
		p.Networks[key] = n
	}
	for _, key := range cp.VolumeNames() {
		v, err := convertVolume(key, cp.Volumes[key], srcs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.Volumes == nil {
			p.Volumes = map[string]Volume{}
		}
		p.Volumes[key] = v
	}
	for _, name := range cp.ServiceNames() {
		c := converter{cp: cp, srcs: srcs, name: name}
		s := c.service(cp.Services[name])
		if len(c.errs) > 0 {
			errs = append(errs, c.errs...)
			continue
		}
		s.ConfigHash = ConfigHash(s)
		p.Services[name] = s
	}
	var declared []string
	for _, s := range cp.AllServices() {
		declared = append(declared, s.Profiles...)
	}
	p.DeclaredProfiles = sortedSet(declared)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func convertNetwork(key string, n types.NetworkConfig, srcs sources) (Network, error) {
	path := []string{"networks", key}
	out := Network{
		Key:        key,
		Name:       n.Name,
		Driver:     n.Driver,
		DriverOpts: cloneMap(n.DriverOpts),
		Internal:   n.Internal,
		Attachable: n.Attachable,
		External:   bool(n.External),
		EnableIPv6: n.EnableIPv6 != nil && *n.EnableIPv6,
		Labels:     cloneMap(n.Labels),
		IPAM:       IPAM{Driver: n.Ipam.Driver},
	}
	for _, pool := range n.Ipam.Config {
		if pool == nil {
			continue
		}
		out.IPAM.Config = append(out.IPAM.Config, IPAMPool{
			Subnet:       pool.Subnet,
			Gateway:      pool.Gateway,
			IPRange:      pool.IPRange,
			AuxAddresses: cloneMap(pool.AuxiliaryAddresses),
		})
	}
	switch {
	case out.EnableIPv6:
		return out, srcs.refuse(append(path, "enable_ipv6"), "IPv6 networks are not supported yet: remove enable_ipv6 or set it false")
	case n.EnableIPv4 != nil && !*n.EnableIPv4:
		return out, srcs.refuse(append(path, "enable_ipv4"), "networks without IPv4 are not supported")
	case out.External:
		// berth only looks an external network up; its driver is not ours to judge
	case out.Driver != "" && out.Driver != "bridge":
		return out, srcs.refuse(append(path, "driver"), "network driver %q is not supported: berth runs bridge networks only", out.Driver)
	case out.IPAM.Driver != "" && out.IPAM.Driver != "default":
		return out, srcs.refuse(append(path, "ipam", "driver"), "IPAM driver %q is not supported: berth has its own", out.IPAM.Driver)
	}
	return out, nil
}

func convertVolume(key string, v types.VolumeConfig, srcs sources) (Volume, error) {
	out := Volume{
		Key:        key,
		Name:       v.Name,
		Driver:     v.Driver,
		DriverOpts: cloneMap(v.DriverOpts),
		External:   bool(v.External),
		Labels:     cloneMap(v.Labels),
	}
	if !out.External && out.Driver != "" && out.Driver != "local" {
		return out, srcs.refuse([]string{"volumes", key, "driver"}, "volume driver %q is not supported: berth has the local driver only", out.Driver)
	}
	return out, nil
}

// converter converts one service and gathers what berth refuses in it.
type converter struct {
	cp   *types.Project
	srcs sources
	name string
	errs []error
}

func (c *converter) refuse(key string, format string, args ...any) {
	path := append([]string{"services", c.name}, strings.Split(key, ".")...)
	c.errs = append(c.errs, c.srcs.refuse(path, format, args...))
}

func (c *converter) service(s types.ServiceConfig) Service {
	out := Service{
		Name:          c.name,
		Replicas:      s.GetScale(),
		ContainerName: s.ContainerName,
		Image:         s.Image,
		PullPolicy:    s.PullPolicy,
		Platform:      s.Platform,
		Entrypoint:    cloneCommand(s.Entrypoint),
		Command:       cloneCommand(s.Command),
		Environment:   environment(s.Environment),
		WorkingDir:    s.WorkingDir,
		User:          s.User,
		GroupAdd:      slices.Clone(s.GroupAdd),
		Labels:        cloneMap(s.Labels),
		Hostname:      s.Hostname,
		Domainname:    s.DomainName,
		Tty:           s.Tty,
		StdinOpen:     s.StdinOpen,
		VolumesFrom:   slices.Clone(s.VolumesFrom),
		NetworkMode:   s.NetworkMode,
		DNS:           slices.Clone(s.DNS),
		DNSSearch:     slices.Clone(s.DNSSearch),
		DNSOptions:    slices.Clone(s.DNSOpts),
		ExtraHosts:    hostsList(s.ExtraHosts),
		Restart:       restartPolicy(s),
		StopSignal:    s.StopSignal,
		Init:          s.Init != nil && *s.Init,
		ReadOnly:      s.ReadOnly,
		Privileged:    s.Privileged,
		CapAdd:        sortedSet(s.CapAdd),
		CapDrop:       sortedSet(s.CapDrop),
		SecurityOpt:   slices.Clone(s.SecurityOpt),
		Sysctls:       cloneMap(s.Sysctls),
		IPC:           s.Ipc,
		PID:           s.Pid,
		Profiles:      slices.Clone(s.Profiles),
		Resources:     resources(s),
		Logging:       logging(s),
	}
	if out.Image == "" {
		// docker compose names the image it builds PROJECT-SERVICE
		out.Image = c.cp.Name + nameSeparator + c.name
	}
	out.StopGracePeriod = defaultStopGracePeriod
	if s.StopGracePeriod != nil {
		out.StopGracePeriod = time.Duration(*s.StopGracePeriod)
	}
	if s.Build != nil {
		out.Build = build(s.Build)
		out.Build.Secrets = c.buildSecrets(s.Build.Secrets)
	}
	out.Ports = c.ports(s.Ports)
	out.Expose = c.expose(s.Expose)
	out.Mounts = append(c.volumes(s.Volumes), c.tmpfs(s.Tmpfs)...)
	out.Files = append(c.files("secret", secretRefs(s.Secrets)), c.files("config", configRefs(s.Configs))...)
	out.Networks = c.networks(s)
	out.Links = links(s.Links, false)
	out.ExternalLinks = links(s.ExternalLinks, true)
	out.DependsOn = dependsOn(s.DependsOn)
	out.Healthcheck = healthcheck(s.HealthCheck)
	out.Ulimits = ulimits(s.Ulimits)
	for _, d := range s.Devices {
		out.Devices = append(out.Devices, Device{Source: d.Source, Target: d.Target, Permissions: d.Permissions})
	}
	if s.Develop != nil {
		out.Develop = develop(s.Develop)
	}
	out.Berth = c.extension(s.Extensions)
	c.unsupported(s)
	return out
}

// unsupported refuses what berth cannot run, rather than ignore it.
func (c *converter) unsupported(s types.ServiceConfig) {
	if s.Provider != nil {
		c.refuse("provider", "provider services are not supported")
	}
	if len(s.Models) > 0 {
		c.refuse("models", "models are not supported")
	}
	if len(s.Gpus) > 0 {
		c.refuse("gpus", "GPUs are not supported")
	}
	if s.Deploy != nil && s.Deploy.Resources.Reservations != nil && len(s.Deploy.Resources.Reservations.Devices) > 0 {
		c.refuse("deploy.resources.reservations.devices", "device reservations (GPUs) are not supported")
	}
	if len(s.PreStart) > 0 {
		c.refuse("pre_start", "lifecycle hooks are not supported yet")
	}
	if len(s.PostStart) > 0 {
		c.refuse("post_start", "lifecycle hooks are not supported yet")
	}
	if len(s.PreStop) > 0 {
		c.refuse("pre_stop", "lifecycle hooks are not supported yet")
	}
	if s.UserNSMode != "" && s.UserNSMode != "host" {
		c.refuse("userns_mode", "userns_mode %q is not supported yet", s.UserNSMode)
	}
	if s.Uts != "" && s.Uts != "host" {
		c.refuse("uts", "uts %q is not supported", s.Uts)
	}
	if s.Runtime != "" && s.Runtime != "berth" {
		c.refuse("runtime", "runtime %q is not supported: berth runs containers itself", s.Runtime)
	}
	if s.Isolation != "" && s.Isolation != "default" {
		c.refuse("isolation", "isolation %q is not supported", s.Isolation)
	}
}

func (c *converter) networks(s types.ServiceConfig) []ServiceNetwork {
	var out []ServiceNetwork
	for _, key := range s.NetworksByPriority() {
		cfg := s.Networks[key]
		sn := ServiceNetwork{Key: key, Name: c.cp.Networks[key].Name}
		if sn.Name == "" {
			sn.Name = key
		}
		if cfg != nil {
			sn.Aliases = slices.Clone(cfg.Aliases)
			sn.IPv4Address = cfg.Ipv4Address
			sn.MacAddress = cfg.MacAddress
			sn.Priority = cfg.Priority
			if cfg.Ipv6Address != "" {
				c.refuse("networks."+key+".ipv6_address", "IPv6 addresses are not supported yet")
			}
			if len(cfg.LinkLocalIPs) > 0 {
				c.refuse("networks."+key+".link_local_ips", "link-local addresses are not supported")
			}
		}
		out = append(out, sn)
	}
	// A service-level mac_address applies to the network with the default
	// route, as in docker compose.
	if s.MacAddress != "" && len(out) > 0 && out[0].MacAddress == "" {
		out[0].MacAddress = s.MacAddress
	}
	return out
}

// extension decodes x-berth strictly: a misspelt key is an error, not a
// silent default.
func (c *converter) extension(ext types.Extensions) Extension {
	var out Extension
	raw, ok := ext["x-berth"]
	if !ok || raw == nil {
		return out
	}
	m, ok := raw.(map[string]any)
	if !ok {
		c.refuse("x-berth", "must be a mapping, not %T", raw)
		return out
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "link_env":
			b, ok := m[k].(bool)
			if !ok {
				c.refuse("x-berth.link_env", "must be a boolean, not %v", m[k])
				continue
			}
			out.LinkEnv = b
		default:
			c.refuse("x-berth."+k, "unknown key: x-berth takes link_env")
		}
	}
	return out
}

func build(b *types.BuildConfig) *Build {
	out := &Build{
		Context:            b.Context,
		Dockerfile:         b.Dockerfile,
		DockerfileInline:   b.DockerfileInline,
		Args:               environment(b.Args),
		Target:             b.Target,
		Labels:             cloneMap(b.Labels),
		Tags:               slices.Clone(b.Tags),
		NoCache:            b.NoCache,
		Pull:               b.Pull,
		Network:            b.Network,
		ExtraHosts:         hostsList(b.ExtraHosts),
		ShmSize:            int64(b.ShmSize),
		AdditionalContexts: cloneMap(b.AdditionalContexts),
		CacheFrom:          slices.Clone(b.CacheFrom),
		Platforms:          slices.Clone(b.Platforms),
	}
	if out.DockerfileInline != "" {
		out.Dockerfile = ""
	}
	return out
}

// environment keeps the variables that have a value: KEY alone, unset in
// the environment, is not passed to the container.
func environment(m types.MappingWithEquals) map[string]string {
	var out map[string]string
	for k, v := range m {
		if v == nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = *v
	}
	return out
}

func restartPolicy(s types.ServiceConfig) RestartPolicy {
	out := RestartPolicy{Name: RestartNo}
	if s.Restart != "" {
		name, n, _ := strings.Cut(s.Restart, ":")
		out = RestartPolicy{Name: restartName(name)}
		out.MaxRetries, _ = strconv.Atoi(n) // a bad count is 0, as in docker compose
	}
	// deploy.restart_policy wins, as in docker compose
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		out = RestartPolicy{Name: restartName(rp.Condition)}
		if rp.MaxAttempts != nil {
			out.MaxRetries = int(*rp.MaxAttempts)
		}
	}
	return out
}

func restartName(condition string) string {
	switch condition {
	case "", "none", "no":
		return RestartNo
	case "any", "always":
		return RestartAlways
	default:
		return condition
	}
}

func resources(s types.ServiceConfig) Resources {
	r := Resources{
		MemoryLimit:       int64(s.MemLimit),
		MemoryReservation: int64(s.MemReservation),
		MemorySwapLimit:   int64(s.MemSwapLimit),
		CPUs:              float32To64(s.CPUS),
		CPUShares:         s.CPUShares,
		CPUSet:            s.CPUSet,
		PidsLimit:         s.PidsLimit,
		ShmSize:           int64(s.ShmSize),
	}
	if s.Deploy == nil {
		return r
	}
	if l := s.Deploy.Resources.Limits; l != nil {
		if l.MemoryBytes != 0 {
			r.MemoryLimit = int64(l.MemoryBytes)
		}
		if l.NanoCPUs != 0 {
			r.CPUs = float32To64(float32(l.NanoCPUs))
		}
		if l.Pids != 0 {
			r.PidsLimit = l.Pids
		}
	}
	if rs := s.Deploy.Resources.Reservations; rs != nil && rs.MemoryBytes != 0 {
		r.MemoryReservation = int64(rs.MemoryBytes)
	}
	return r
}

func logging(s types.ServiceConfig) Logging {
	out := Logging{Driver: s.LogDriver, Options: cloneMap(s.LogOpt)}
	if s.Logging != nil {
		if s.Logging.Driver != "" {
			out.Driver = s.Logging.Driver
		}
		if len(s.Logging.Options) > 0 {
			out.Options = cloneMap(s.Logging.Options)
		}
	}
	return out
}

func links(list []string, external bool) []Link {
	var out []Link
	for _, l := range list {
		target, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = target
		}
		if external {
			out = append(out, Link{Container: target, Alias: alias})
		} else {
			out = append(out, Link{Service: target, Alias: alias})
		}
	}
	return out
}

func dependsOn(d types.DependsOnConfig) map[string]Dependency {
	var out map[string]Dependency
	for name, dep := range d {
		if out == nil {
			out = map[string]Dependency{}
		}
		cond := dep.Condition
		if cond == "" {
			cond = ConditionStarted
		}
		out[name] = Dependency{Condition: cond, Required: dep.Required, Restart: dep.Restart}
	}
	return out
}

func healthcheck(h *types.HealthCheckConfig) *Healthcheck {
	if h == nil {
		return nil
	}
	out := &Healthcheck{
		Interval:      durationOr(h.Interval, defaultHealthInterval),
		Timeout:       durationOr(h.Timeout, defaultHealthTimeout),
		StartPeriod:   durationOr(h.StartPeriod, 0),
		StartInterval: durationOr(h.StartInterval, defaultStartInterval),
		Retries:       defaultHealthRetries,
		Test:          slices.Clone([]string(h.Test)),
	}
	if h.Retries != nil && *h.Retries != 0 {
		out.Retries = int(*h.Retries)
	}
	if h.Disable || (len(h.Test) > 0 && h.Test[0] == "NONE") {
		return &Healthcheck{Disable: true}
	}
	return out
}

func durationOr(d *types.Duration, fallback time.Duration) time.Duration {
	if d == nil || *d == 0 {
		return fallback
	}
	return time.Duration(*d)
}

func ulimits(m map[string]*types.UlimitsConfig) []Ulimit {
	var out []Ulimit
	for _, name := range sortedKeys(m) {
		u := m[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Single), int64(u.Single)
		if u.Soft != 0 {
			soft = int64(u.Soft)
		}
		if u.Hard != 0 {
			hard = int64(u.Hard)
		}
		out = append(out, Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	return out
}

func develop(d *types.DevelopConfig) *Develop {
	out := &Develop{}
	for _, w := range d.Watch {
		out.Watch = append(out.Watch, WatchRule{
			Path:        w.Path,
			Action:      string(w.Action),
			Target:      w.Target,
			Include:     slices.Clone(w.Include),
			Ignore:      slices.Clone(w.Ignore),
			InitialSync: w.InitialSync,
			Exec:        cloneCommand(w.Exec.Command),
		})
	}
	return out
}

// hostsList renders extra_hosts as docker's HOST:IP, sorted (compose-go
// keeps them in a map).
func hostsList(h types.HostsList) []string {
	if len(h) == 0 {
		return nil
	}
	l := h.AsList(":")
	sort.Strings(l)
	return l
}

func cloneCommand(c types.ShellCommand) []string {
	if c == nil {
		return nil
	}
	return append([]string{}, c...)
}

func cloneMap[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sortedSet is the distinct non-empty strings of l, sorted; nil if none.
func sortedSet(l []string) []string {
	var out []string
	for _, s := range l {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// float32To64 widens compose-go's float32 without the binary noise
// (0.1 stays 0.1, not 0.10000000149011612).
func float32To64(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

func secretRefs(l []types.ServiceSecretConfig) []types.FileReferenceConfig {
	out := make([]types.FileReferenceConfig, len(l))
	for i, r := range l {
		out[i] = types.FileReferenceConfig(r)
	}
	return out
}

func configRefs(l []types.ServiceConfigObjConfig) []types.FileReferenceConfig {
	out := make([]types.FileReferenceConfig, len(l))
	for i, r := range l {
		out[i] = types.FileReferenceConfig(r)
	}
	return out
}
