package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/runtime/seccomp"
)

// SpecOptions shape a default spec.
type SpecOptions struct {
	Args     []string // default: sh
	Env      []string // added after PATH
	Cwd      string   // default: /
	Hostname string
	// Rootfs is the spec's root.path, relative to the bundle: default "rootfs".
	Rootfs         string
	ReadonlyRootfs bool
	Terminal       bool
	User           specs.User
	// CgroupNamespace gives the container its own cgroup namespace, as
	// Docker does by default on cgroup v2 hosts.
	CgroupNamespace bool
	// Unconfined leaves seccomp off (Docker's seccomp=unconfined).
	Unconfined bool
	// NewPrivileges allows setuid binaries to gain privileges (clears
	// no_new_privs, which berth sets by default).
	NewPrivileges bool
}

// DefaultCapabilities is Docker's default capability set.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths are the /proc and /sys paths Docker hides.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths are the /proc paths Docker makes read-only.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// DefaultDeviceRules are Docker's device cgroup rules: nothing but mknod,
// and read-write access to the usual character devices and ptys.
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	num := func(n int64) *int64 { return &n }
	c := func(major, minor *int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: major, Minor: minor, Access: access}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		c(nil, nil, "m"),
		{Allow: true, Type: "b", Access: "m"},
		c(num(1), num(3), "rwm"), c(num(1), num(8), "rwm"), c(num(1), num(7), "rwm"),
		c(num(5), num(0), "rwm"), c(num(1), num(5), "rwm"), c(num(1), num(9), "rwm"),
		c(num(5), num(1), "rwm"), c(num(136), nil, "rwm"), c(num(5), num(2), "rwm"),
		c(num(10), num(200), "rwm"),
	}
}

// DefaultMounts are the filesystems every container gets (Docker's).
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
	}
}

// SpecVersion is the ociVersion of the specs DefaultSpec writes: every
// field it sets is 1.0's, and runtimes check the version (crun refuses the
// 1.3.0 of the runtime-spec module berth is built with), so a bundle made
// by `berth runtime spec` runs under runc and crun as well.
const SpecVersion = "1.0.2-dev"

// DefaultSpec returns a spec with Docker's defaults and berth's hardening:
// the default capabilities, no_new_privs, masked and read-only /proc and
// /sys paths, the device allowlist, and Docker's seccomp profile. The
// container engine, `berth runtime spec` and the tests all start here.
func DefaultSpec(o SpecOptions) (*specs.Spec, error) {
	args := o.Args
	if len(args) == 0 {
		args = []string{"sh"}
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	rootfs := o.Rootfs
	if rootfs == "" {
		rootfs = "rootfs"
	}
	caps := DefaultCapabilities()
	spec := &specs.Spec{
		Version: SpecVersion,
		Process: &specs.Process{
			Terminal: o.Terminal,
			User:     o.User,
			Args:     args,
			Env:      append([]string{"PATH=" + defaultPath}, o.Env...),
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: !o.NewPrivileges,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: o.ReadonlyRootfs},
		Hostname: o.Hostname,
		Mounts:   DefaultMounts(),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources:     &specs.LinuxResources{Devices: DefaultDeviceRules()},
			MaskedPaths:   DefaultMaskedPaths(),
			ReadonlyPaths: DefaultReadonlyPaths(),
		},
	}
	if o.CgroupNamespace {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if !o.Unconfined {
		prof, err := seccomp.Default(spec)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		spec.Linux.Seccomp = prof
	}
	return spec, nil
}

// LoadSpec reads a bundle's config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("bundle %s has no config.json", bundle))
		}
		return nil, err
	}
	spec := &specs.Spec{}
	if err := json.Unmarshal(b, spec); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %v", filepath.Join(bundle, "config.json"), err))
	}
	return spec, nil
}

// WriteSpec writes spec as a bundle's config.json.
func WriteSpec(bundle string, spec *specs.Spec) error {
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), append(b, '\n'), 0o644)
}
