package runtime

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Validate checks that a spec describes a container berth can create, and
// says what is wrong in the spec's own words when it does not.
func Validate(spec *specs.Spec) error {
	bad := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage("config.json: " + fmt.Sprintf(format, args...))
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return bad("root.path is required")
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return bad("process.args is required")
	}
	if spec.Process.Cwd != "" && !filepath.IsAbs(spec.Process.Cwd) {
		return bad("process.cwd %q is not absolute", spec.Process.Cwd)
	}
	if spec.Linux == nil {
		return bad("linux is required")
	}
	if h := spec.Hooks; h != nil && (hookCount(h) > 0) {
		// A hook often sets up what the process needs (its network, a GPU):
		// running without it would fail later and further from the cause.
		return errdefs.ErrNotImplemented.WithMessage("config.json: hooks are not supported by berth's runtime")
	}
	// own: the namespace is not the host's (made for the container, or
	// another container's it joins).
	own := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		own[ns.Type] = true
	}
	if spec.Hostname != "" && !own[specs.UTSNamespace] {
		return bad("hostname %q needs the container's own uts namespace", spec.Hostname)
	}
	if spec.Domainname != "" && !own[specs.UTSNamespace] {
		return bad("domainname %q needs the container's own uts namespace", spec.Domainname)
	}
	userns := own[specs.UserNamespace]
	if userns && (len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0) {
		return bad("a user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if !userns && (len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0) {
		return bad("linux.uidMappings and gidMappings need a user namespace")
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return bad("mount destination %q is not absolute", m.Destination)
		}
	}
	for k := range spec.Linux.Sysctl {
		if err := checkSysctl(k, own); err != nil {
			return bad("%v", err)
		}
	}
	if spec.Process.ConsoleSize != nil && !spec.Process.Terminal {
		return bad("process.consoleSize needs process.terminal")
	}
	return nil
}

// checkSysctl allows only the sysctls that the container's own namespaces
// scope, as runc does: anything else would change the host.
func checkSysctl(key string, own map[specs.LinuxNamespaceType]bool) error {
	if strings.Contains(key, "/") || strings.Contains(key, "..") {
		return fmt.Errorf("sysctl %q: not a sysctl name", key)
	}
	switch {
	case strings.HasPrefix(key, "fs.mqueue."),
		key == "kernel.msgmax", key == "kernel.msgmnb", key == "kernel.msgmni", key == "kernel.sem",
		key == "kernel.shmall", key == "kernel.shmmax", key == "kernel.shmmni", key == "kernel.shm_rmid_forced":
		if own[specs.IPCNamespace] {
			return nil
		}
		return fmt.Errorf("sysctl %s needs the container's own ipc namespace", key)
	case strings.HasPrefix(key, "net."):
		if own[specs.NetworkNamespace] {
			return nil
		}
		return fmt.Errorf("sysctl %s needs the container's own network namespace", key)
	case key == "kernel.hostname", key == "kernel.domainname":
		if own[specs.UTSNamespace] {
			return nil
		}
		return fmt.Errorf("sysctl %s needs the container's own uts namespace", key)
	}
	return fmt.Errorf("sysctl %s is not namespaced: it would change the host", key)
}

// hookCount counts a spec's hooks of every kind.
func hookCount(h *specs.Hooks) int {
	//lint:ignore SA1019 older specs still carry prestart hooks, which must be refused too
	n := len(h.Prestart)
	return n + len(h.CreateRuntime) + len(h.CreateContainer) + len(h.StartContainer) + len(h.Poststart) + len(h.Poststop)
}
