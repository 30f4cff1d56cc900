package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/runtime/seccomp"
)

const (
	defaultShmSize   = 64 << 20
	defaultPidsLimit = 4096
)

// defaultPath is the PATH a container gets when its image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildSpec turns a container's record, its image config, its resolved
// mounts and its network namespace into the runtime spec of its bundle.
func (m *Manager) buildSpec(c *Container, img *v1.ConfigFile, mounts []specs.Mount, netns string) (*specs.Spec, error) {
	cfg := c.Config
	ic := img.Config
	env := mergeEnv(ic.Env, cfg.Env)
	if cfg.LinkEnv {
		// The service's own variables win over the legacy link ones.
		env = mergeEnv(m.linkEnv(c), env)
	}
	if !hasEnv(env, "PATH") {
		env = append([]string{defaultPath}, env...)
	}
	env = append(env, "HOSTNAME="+hostnameOf(c))
	if cfg.Tty {
		if !hasEnv(env, "TERM") {
			env = append(env, "TERM=xterm")
		}
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = ic.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = ic.User
	}
	rootfs := m.rootfsDir(c.ID)
	user, err := resolveUser(rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	args := append([]string{c.Path}, c.Args...)
	if cfg.Init {
		// berth's own small init reaps and forwards signals in front of the
		// user's process: berth's binary, bind-mounted read-only at InitPath.
		args = append([]string{InitPath, InitEntry, "--"}, args...)
	}

	caps := capabilities(cfg)
	spec := &specs.Spec{
		Version:    specs.Version,
		Hostname:   hostnameOf(c),
		Domainname: cfg.Domainname,
		Root:       &specs.Root{Path: "rootfs", Readonly: cfg.ReadOnly},
		Process: &specs.Process{
			Terminal: cfg.Tty,
			Args:     args,
			Env:      env,
			Cwd:      cwd,
			User:     user,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: noNewPrivileges(cfg),
			Rlimits:         rlimits(cfg),
		},
		Mounts: defaultMounts(cfg),
		Annotations: map[string]string{
			"dev.berth.container.name": c.Name,
		},
		Linux: &specs.Linux{
			// No cgroupsPath: the runtime puts the container under the state
			// root's parent cgroup, and removes that with the last container.
			Namespaces: specNamespaces(cfg, netns),
			Sysctl:     cfg.Sysctls,
			Resources:  resources(cfg),
		},
	}
	if !c.Config.Privileged {
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = runtime.DefaultMaskedPaths(), runtime.DefaultReadonlyPaths()
	}
	if err := m.shareNamespaces(spec, cfg); err != nil {
		return nil, err
	}
	if cfg.NetworkMode == "host" {
		spec.Hostname = "" // the host's, as docker keeps it
	}
	dir := m.dir(c.ID)
	for _, f := range []struct{ name, target string }{{"hostname", "/etc/hostname"}, {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"}} {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: f.target, Type: "bind", Source: filepath.Join(dir, f.name), Options: []string{"rbind", "rprivate"}})
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	if cfg.Init {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: m.binary, Options: []string{"bind", "ro", "nosuid", "nodev", "rprivate"}})
	}
	if err := devices(spec, cfg); err != nil {
		return nil, err
	}
	if !seccompUnconfined(cfg) && !cfg.Privileged {
		profile, err := seccomp.Default(spec)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		spec.Linux.Seccomp = profile
	}
	return spec, nil
}

// InitPath is where `init: true` finds berth's init inside the container.
const InitPath = "/sbin/berth-init"

func mergeEnv(image, over []string) []string {
	out := append([]string{}, image...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return e == k || strings.HasPrefix(e, k+"=") })
		out = append(out, kv)
	}
	return out
}

func hasEnv(env []string, key string) bool {
	return slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
}

func capabilities(cfg Config) []string {
	if cfg.Privileged {
		return runtime.AllCapabilities()[:lastCap()+1]
	}
	caps := runtime.DefaultCapabilities()
	norm := func(s string) string {
		s = strings.ToUpper(s)
		if !strings.HasPrefix(s, "CAP_") {
			s = "CAP_" + s
		}
		return s
	}
	for _, d := range cfg.CapDrop {
		if strings.EqualFold(d, "ALL") {
			caps = nil
			continue
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == norm(d) })
	}
	for _, a := range cfg.CapAdd {
		if strings.EqualFold(a, "ALL") {
			return capabilities(Config{Privileged: true})
		}
		if c := norm(a); !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// noNewPrivileges is on by default (DESIGN.md: berth's hardening);
// security_opt no-new-privileges:false turns it off for images that rely
// on setuid binaries.
func noNewPrivileges(cfg Config) bool {
	on := true
	for _, o := range cfg.SecurityOpt {
		switch o {
		case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
			on = true
		case "no-new-privileges:false", "no-new-privileges=false":
			on = false
		}
	}
	return on
}

func seccompUnconfined(cfg Config) bool {
	for _, o := range cfg.SecurityOpt {
		if o == "seccomp=unconfined" || o == "seccomp:unconfined" {
			return true
		}
	}
	return false
}

func rlimits(cfg Config) []specs.POSIXRlimit {
	var out []specs.POSIXRlimit
	for _, u := range cfg.Ulimits {
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return out
}

func resources(cfg Config) *specs.LinuxResources {
	r := cfg.Resources
	res := &specs.LinuxResources{}
	if r.Memory > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &r.Memory}
	}
	if r.NanoCPUs > 0 || r.CPUShares > 0 || r.CpusetCpus != "" {
		res.CPU = &specs.LinuxCPU{Cpus: r.CpusetCpus}
		if r.CPUShares > 0 {
			shares := uint64(r.CPUShares)
			res.CPU.Shares = &shares
		}
		if r.NanoCPUs > 0 {
			period := uint64(100000)
			quota := r.NanoCPUs * int64(period) / 1e9
			res.CPU.Period, res.CPU.Quota = &period, &quota
		}
	}
	// A default pids limit keeps a fork bomb inside its container; -1 or a
	// negative pids_limit lifts it, as with docker.
	pids := r.PidsLimit
	if pids == 0 {
		pids = defaultPidsLimit
	}
	if pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	res.Devices = runtime.DefaultDeviceRules()
	if cfg.Privileged {
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	return res
}

func ptr[T any](v T) *T { return &v }

func defaultMounts(cfg Config) []specs.Mount {
	mounts := runtime.DefaultMounts()
	for i, m := range mounts {
		switch m.Destination {
		case "/dev/shm":
			if cfg.Resources.ShmSize > 0 {
				mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool {
					return strings.HasPrefix(o, "size=")
				}), "size="+strconv.FormatInt(cfg.Resources.ShmSize, 10))
			}
		case "/sys":
			if cfg.Privileged {
				mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
	}
	return mounts
}

// specNamespaces lists the namespaces of cfg's spec: the network namespace
// joined at netns when one is given; none for what the host shares
// (network_mode, ipc and pid host). Those of another container
// (container:NAME) are new here, and joined by shareNamespaces.
func specNamespaces(cfg Config, netns string) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
	switch {
	case netns != "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	case cfg.NetworkMode == "host":
		// The host's network, and its hostname, as docker keeps it.
		ns = slices.DeleteFunc(ns, func(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace })
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return slices.DeleteFunc(ns, func(n specs.LinuxNamespace) bool {
		return (n.Type == specs.IPCNamespace && cfg.IpcMode == "host") || (n.Type == specs.PIDNamespace && cfg.PidMode == "host")
	})
}

// shareNamespaces applies ipc: and pid: modes that join another
// container's namespace.
func (m *Manager) shareNamespaces(spec *specs.Spec, cfg Config) error {
	for _, share := range []struct {
		mode string
		typ  specs.LinuxNamespaceType
		file string
	}{{cfg.IpcMode, specs.IPCNamespace, "ipc"}, {cfg.PidMode, specs.PIDNamespace, "pid"}} {
		switch {
		case share.mode == "" || share.mode == "private" || share.mode == "shareable" || share.mode == "host":
		case strings.HasPrefix(share.mode, "container:"):
			e, err := m.lookup(strings.TrimPrefix(share.mode, "container:"))
			if err != nil {
				return err
			}
			e.op.Lock()
			pid, status := e.c.State.Pid, e.c.State.Status
			e.op.Unlock()
			if status != Running || pid == 0 {
				return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("%s: %s: that container is not running", share.file, share.mode))
			}
			for i := range spec.Linux.Namespaces {
				if spec.Linux.Namespaces[i].Type == share.typ {
					spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pid, share.file)
				}
			}
		default:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s mode %q is not supported", share.file, share.mode))
		}
	}
	return nil
}

// devices adds the config's host devices to the spec and the device cgroup.
func devices(spec *specs.Spec, cfg Config) error {
	for _, d := range cfg.Devices {
		var st unix.Stat_t
		if err := unix.Stat(d.PathOnHost, &st); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("device %s: %v", d.PathOnHost, err))
		}
		typ := "c"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			typ = "b"
		case unix.S_IFCHR:
		default:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("device %s is not a device node", d.PathOnHost))
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		target := d.PathInContainer
		if target == "" {
			target = d.PathOnHost
		}
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		mode := os.FileMode(st.Mode & 0o777)
		spec.Linux.Devices = append(spec.Linux.Devices, specs.LinuxDevice{Path: target, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: ptr(st.Uid), GID: ptr(st.Gid)})
		spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms})
	}
	return nil
}
