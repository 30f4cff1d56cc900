package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/engine/container"
)

// createFlags are docker's `create` and `run` flags.
type createFlags struct {
	name, workdir, user, entrypoint, hostname, domainname string
	env, envFiles, labels                                 []string
	interactive, tty                                      bool
	restart                                               string
	volumes, mounts, tmpfs                                []string
	publish, expose                                       []string
	network, ip                                           string
	networkAliases, dns, dnsSearch, dnsOptions, addHosts  []string
	links                                                 []string
	privileged, readOnly, init                            bool
	capAdd, capDrop, securityOpts                         []string
	stopSignal                                            string
	stopTimeout                                           int
	memory, shmSize                                       string
	cpus                                                  float64
	cpuShares                                             int64
	cpusetCpus                                            string
	pidsLimit                                             int64
	ulimits, sysctls, devices                             []string
	logDriver                                             string
	logOpts                                               []string
	healthCmd                                             string
	healthInterval, healthTimeout, healthStartPeriod      time.Duration
	healthStartInterval                                   time.Duration
	healthRetries                                         int
	noHealthcheck                                         bool
	ipc, pid                                              string
}

func (o *createFlags) register(f *pflag.FlagSet) {
	// Our own help flag, without -h: docker's -h is --hostname.
	f.Bool("help", false, "Print usage")
	f.StringVar(&o.name, "name", "", "Assign a name to the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables (KEY=VALUE, or KEY to pass this shell's)")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "Read in a file of environment variables")
	f.StringArrayVarP(&o.labels, "label", "l", nil, "Set meta data on a container")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	f.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	f.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "Bind mount a volume (SOURCE:TARGET[:ro], or TARGET for an anonymous volume)")
	f.StringArrayVar(&o.mounts, "mount", nil, "Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=,target=,...)")
	f.StringArrayVar(&o.tmpfs, "tmpfs", nil, "Mount a tmpfs directory (PATH[:size=64m,mode=1777])")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "Publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])")
	f.StringArrayVar(&o.expose, "expose", nil, "Expose a port or a range of ports")
	f.StringVar(&o.network, "network", "", "Connect a container to a network (a name, none, host or container:NAME)")
	f.StringVar(&o.network, "net", "", "Connect a container to a network")
	_ = f.MarkHidden("net")
	f.StringArrayVar(&o.networkAliases, "network-alias", nil, "Add network-scoped alias for the container")
	f.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringArrayVar(&o.dns, "dns", nil, "Set custom DNS servers")
	f.StringArrayVar(&o.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	f.StringArrayVar(&o.dnsOptions, "dns-option", nil, "Set DNS options")
	f.StringArrayVar(&o.addHosts, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	f.StringArrayVar(&o.links, "link", nil, "Add link to another container (NAME[:ALIAS])")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	f.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	f.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	f.StringArrayVar(&o.capAdd, "cap-add", nil, "Add Linux capabilities")
	f.StringArrayVar(&o.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	f.StringArrayVar(&o.securityOpts, "security-opt", nil, "Security Options (seccomp=unconfined, no-new-privileges[:false])")
	f.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	f.IntVar(&o.stopTimeout, "stop-timeout", -1, "Timeout (in seconds) to stop a container")
	f.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	f.StringVar(&o.shmSize, "shm-size", "", "Size of /dev/shm")
	f.Float64Var(&o.cpus, "cpus", 0, "Number of CPUs")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (-1 for unlimited)")
	f.StringArrayVar(&o.ulimits, "ulimit", nil, "Ulimit options (NAME=SOFT[:HARD])")
	f.StringArrayVar(&o.sysctls, "sysctl", nil, "Sysctl options")
	f.StringArrayVar(&o.devices, "device", nil, "Add a host device to the container (HOST[:CONTAINER[:rwm]])")
	f.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container (json-file)")
	f.StringArrayVar(&o.logOpts, "log-opt", nil, "Log driver options (max-size=10m, max-file=3)")
	f.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	f.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h)")
	f.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h)")
	f.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)")
	f.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h)")
	f.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	f.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	f.StringVar(&o.ipc, "ipc", "", "IPC mode to use (private, shareable, host, container:NAME)")
	f.StringVar(&o.pid, "pid", "", "PID namespace to use (host, container:NAME)")
}

// config turns the flags, the image and the command into a container's
// config. cmd is the command after the image (nil: the image's).
func (o *createFlags) config(c *cobra.Command, image string, cmd []string) (container.Config, error) {
	cfg := container.Config{
		Name: o.name, Image: image, WorkingDir: o.workdir, User: o.user, Hostname: o.hostname, Domainname: o.domainname,
		Tty: o.tty, OpenStdin: o.interactive, Privileged: o.privileged, ReadOnly: o.readOnly, Init: o.init,
		CapAdd: o.capAdd, CapDrop: o.capDrop, SecurityOpt: o.securityOpts, StopSignal: o.stopSignal,
		DNS: o.dns, DNSSearch: o.dnsSearch, DNSOptions: o.dnsOptions, ExtraHosts: o.addHosts,
		IpcMode: o.ipc, PidMode: o.pid,
	}
	if len(cmd) > 0 {
		cfg.Cmd = cmd
	}
	if c.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{}
		if o.entrypoint != "" {
			cfg.Entrypoint = []string{o.entrypoint}
		}
	}
	var err error
	if cfg.Env, err = readEnv(o.envFiles, o.env); err != nil {
		return cfg, err
	}
	if len(o.labels) > 0 {
		cfg.Labels = map[string]string{}
		for _, l := range o.labels {
			k, v, _ := strings.Cut(l, "=")
			cfg.Labels[k] = v
		}
	}
	if cfg.RestartPolicy, err = parseRestart(o.restart); err != nil {
		return cfg, err
	}
	if c.Flags().Changed("stop-timeout") && o.stopTimeout >= 0 {
		d := time.Duration(o.stopTimeout) * time.Second
		cfg.StopTimeout = &d
	}
	if cfg.Mounts, err = parseMounts(o.volumes, o.mounts, o.tmpfs); err != nil {
		return cfg, err
	}
	if err := o.networkConfig(&cfg); err != nil {
		return cfg, err
	}
	if err := o.resources(&cfg); err != nil {
		return cfg, err
	}
	if o.logDriver != "" || len(o.logOpts) > 0 {
		cfg.Log = container.LogConfig{Type: o.logDriver, Config: map[string]string{}}
		for _, opt := range o.logOpts {
			k, v, ok := strings.Cut(opt, "=")
			if !ok {
				return cfg, fmt.Errorf("--log-opt %q: want KEY=VALUE", opt)
			}
			cfg.Log.Config[k] = v
		}
	}
	switch {
	case o.noHealthcheck:
		cfg.Healthcheck = &container.Healthcheck{Test: []string{"NONE"}}
	case o.healthCmd != "" || o.healthInterval > 0 || o.healthTimeout > 0 || o.healthRetries > 0 || o.healthStartPeriod > 0:
		cfg.Healthcheck = &container.Healthcheck{
			Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStartPeriod,
			StartInterval: o.healthStartInterval, Retries: o.healthRetries,
		}
		if o.healthCmd != "" {
			cfg.Healthcheck.Test = []string{"CMD-SHELL", o.healthCmd}
		}
	}
	return cfg, nil
}

// readEnv reads env files (KEY=VALUE lines, # comments) and then the -e
// flags; a KEY without a value takes this shell's, or is left out.
func readEnv(files, flags []string) ([]string, error) {
	var out []string
	add := func(kv string) {
		if !strings.Contains(kv, "=") {
			if v, ok := os.LookupEnv(kv); ok {
				out = append(out, kv+"="+v)
			}
			return
		}
		out = append(out, kv)
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				add(line)
			}
		}
		f.Close()
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", path, err)
		}
	}
	for _, kv := range flags {
		add(kv)
	}
	return out, nil
}

func parseRestart(s string) (container.RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: name}
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasN {
			return p, fmt.Errorf("--restart %q: only on-failure takes a retry count", s)
		}
	case "on-failure":
		if hasN {
			count, err := strconv.Atoi(n)
			if err != nil || count < 0 {
				return p, fmt.Errorf("--restart %q: want on-failure[:N]", s)
			}
			p.MaximumRetryCount = count
		}
	default:
		return p, fmt.Errorf("--restart %q: want no, always, unless-stopped or on-failure[:N]", s)
	}
	return p, nil
}

// parseMounts reads -v, --mount and --tmpfs.
func parseMounts(volumes, mounts, tmpfs []string) ([]container.Mount, error) {
	var out []container.Mount
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		var m container.Mount
		switch len(parts) {
		case 1:
			m = container.Mount{Type: container.MountVolume, Target: parts[0]}
		case 2, 3:
			m = container.Mount{Type: container.MountVolume, Source: parts[0], Target: parts[1]}
			if len(parts) == 3 {
				for _, opt := range strings.Split(parts[2], ",") {
					switch opt {
					case "ro":
						m.ReadOnly = true
					case "rw", "z", "Z", "":
					case "nocopy":
						m.NoCopy = true
					case "shared", "rshared", "slave", "rslave", "private", "rprivate":
						m.Propagation = opt
					default:
						return nil, fmt.Errorf("-v %q: unknown option %q", v, opt)
					}
				}
			}
		default:
			return nil, fmt.Errorf("-v %q: want [SOURCE:]TARGET[:OPTIONS]", v)
		}
		if src := m.Source; strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "~") {
			abs, err := hostPath(src)
			if err != nil {
				return nil, err
			}
			// docker -v makes a missing host directory; --mount does not.
			m.Type, m.Source, m.CreateHostPath = container.MountBind, abs, true
		}
		out = append(out, m)
	}
	for _, spec := range mounts {
		m := container.Mount{Type: container.MountVolume}
		for _, field := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch strings.ToLower(k) {
			case "type":
				m.Type = container.MountType(v)
			case "source", "src":
				m.Source = v
			case "target", "destination", "dst":
				m.Target = v
			case "readonly", "ro":
				m.ReadOnly = v == "" || v == "true" || v == "1"
			case "volume-nocopy":
				m.NoCopy = v == "" || v == "true" || v == "1"
			case "bind-propagation":
				m.Propagation = v
			case "tmpfs-size":
				n, err := units.RAMInBytes(v)
				if err != nil {
					return nil, fmt.Errorf("--mount %q: tmpfs-size: %w", spec, err)
				}
				m.TmpfsSize = n
			case "tmpfs-mode":
				mode, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					return nil, fmt.Errorf("--mount %q: tmpfs-mode: want octal", spec)
				}
				m.TmpfsMode = uint32(mode)
			default:
				return nil, fmt.Errorf("--mount %q: unknown key %q", spec, k)
			}
		}
		if m.Type == container.MountBind {
			abs, err := hostPath(m.Source)
			if err != nil {
				return nil, err
			}
			m.Source = abs
		}
		if m.Target == "" {
			return nil, fmt.Errorf("--mount %q: no target", spec)
		}
		out = append(out, m)
	}
	for _, spec := range tmpfs {
		path, opts, _ := strings.Cut(spec, ":")
		m := container.Mount{Type: container.MountTmpfs, Target: path}
		for _, opt := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "":
			case "size":
				n, err := units.RAMInBytes(v)
				if err != nil {
					return nil, fmt.Errorf("--tmpfs %q: size: %w", spec, err)
				}
				m.TmpfsSize = n
			case "mode":
				mode, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					return nil, fmt.Errorf("--tmpfs %q: mode: want octal", spec)
				}
				m.TmpfsMode = uint32(mode)
			case "ro":
				m.ReadOnly = true
			case "rw", "noexec", "exec", "nosuid", "nodev":
			default:
				return nil, fmt.Errorf("--tmpfs %q: unknown option %q", spec, k)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// hostPath makes a bind source absolute (from the current directory).
func hostPath(p string) (string, error) {
	if strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		p = filepath.Join(home, p[2:])
	}
	return filepath.Abs(p)
}

func (o *createFlags) networkConfig(cfg *container.Config) error {
	switch n := o.network; {
	case n == "none" || n == "host" || strings.HasPrefix(n, "container:"):
		cfg.NetworkMode = n
	case n != "" || len(o.networkAliases) > 0 || o.ip != "":
		if n == "" || n == "default" {
			n = container.DefaultNetwork
		}
		cfg.Networks = []container.Attachment{{Network: n, Aliases: o.networkAliases, IPv4Address: o.ip}}
	}
	for _, l := range o.links {
		name, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = name
		}
		cfg.Links = append(cfg.Links, container.Link{Container: name, Alias: alias})
	}
	for _, p := range o.expose {
		port, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, hi, err := portRange(port)
		if err != nil {
			return fmt.Errorf("--expose %q: %w", p, err)
		}
		for n := lo; n <= hi; n++ {
			cfg.ExposedPorts = append(cfg.ExposedPorts, container.Port{Port: n, Protocol: proto})
		}
	}
	for _, p := range o.publish {
		b, err := parsePublish(p)
		if err != nil {
			return err
		}
		cfg.PortBindings = append(cfg.PortBindings, b)
		cfg.ExposedPorts = append(cfg.ExposedPorts, container.Port{Port: b.ContainerPort, Protocol: b.Protocol})
	}
	return nil
}

// parsePublish reads [IP:][HOST_PORT[-END]:]CONTAINER_PORT[/PROTO].
func parsePublish(s string) (container.PortBinding, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	b := container.PortBinding{Protocol: proto}
	var ip, host, cport string
	if i := strings.LastIndex(spec, ":"); i < 0 {
		cport = spec
	} else {
		cport = spec[i+1:]
		rest := spec[:i]
		if j := strings.LastIndex(rest, ":"); j < 0 {
			host = rest
		} else {
			ip, host = strings.Trim(rest[:j], "[]"), rest[j+1:]
		}
	}
	n, err := strconv.ParseUint(cport, 10, 16)
	if err != nil || n == 0 {
		return b, fmt.Errorf("-p %q: bad container port %q", s, cport)
	}
	b.ContainerPort, b.HostIP = uint16(n), ip
	if host != "" {
		lo, hi, err := portRange(host)
		if err != nil {
			return b, fmt.Errorf("-p %q: %w", s, err)
		}
		b.HostPort = lo
		if hi > lo {
			b.HostPortEnd = hi
		}
	}
	return b, nil
}

func portRange(s string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	if !isRange {
		return uint16(a), uint16(a), nil
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("bad port range %q", s)
	}
	return uint16(a), uint16(b), nil
}

func (o *createFlags) resources(cfg *container.Config) error {
	r := &cfg.Resources
	var err error
	if o.memory != "" {
		if r.Memory, err = units.RAMInBytes(o.memory); err != nil {
			return fmt.Errorf("--memory %q: %w", o.memory, err)
		}
	}
	if o.shmSize != "" {
		if r.ShmSize, err = units.RAMInBytes(o.shmSize); err != nil {
			return fmt.Errorf("--shm-size %q: %w", o.shmSize, err)
		}
	}
	r.NanoCPUs = int64(o.cpus * 1e9)
	r.CPUShares, r.CpusetCpus, r.PidsLimit = o.cpuShares, o.cpusetCpus, o.pidsLimit
	for _, u := range o.ulimits {
		name, vals, ok := strings.Cut(u, "=")
		if !ok {
			return fmt.Errorf("--ulimit %q: want NAME=SOFT[:HARD]", u)
		}
		soft, hard, hasHard := strings.Cut(vals, ":")
		s, err := strconv.ParseInt(soft, 10, 64)
		h := s
		if err == nil && hasHard {
			h, err = strconv.ParseInt(hard, 10, 64)
		}
		if err != nil {
			return fmt.Errorf("--ulimit %q: want numbers", u)
		}
		cfg.Ulimits = append(cfg.Ulimits, container.Ulimit{Name: name, Soft: s, Hard: h})
	}
	if len(o.sysctls) > 0 {
		cfg.Sysctls = map[string]string{}
		for _, s := range o.sysctls {
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return fmt.Errorf("--sysctl %q: want KEY=VALUE", s)
			}
			cfg.Sysctls[k] = v
		}
	}
	for _, d := range o.devices {
		parts := strings.Split(d, ":")
		dev := container.Device{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
		if len(parts) > 1 && parts[1] != "" {
			if strings.HasPrefix(parts[1], "/") {
				dev.PathInContainer = parts[1]
			} else {
				dev.CgroupPermissions = parts[1]
			}
		}
		if len(parts) > 2 {
			dev.CgroupPermissions = parts[2]
		}
		cfg.Devices = append(cfg.Devices, dev)
	}
	return nil
}
