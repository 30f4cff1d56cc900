package runtime

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsJoin is a namespace to enter by path before the setup stage is cloned.
type nsJoin struct {
	Type specs.LinuxNamespaceType
	Path string
}

// nsPlan is how the setup stage gets its namespaces.
type nsPlan struct {
	// flags are the clone flags of the namespaces created at clone time.
	flags uintptr
	// joins are entered, in this order, on the cloning thread first: a
	// process cannot move itself into a pid namespace (setns only places
	// its future children there), so the thread that clones does it.
	joins []nsJoin
	// new lists every namespace the container gets fresh, including the
	// cgroup namespace, which the child unshares itself once it is in its
	// cgroup (a claimed spare is moved there after the clone on v2).
	new []specs.LinuxNamespaceType
	// user is set when the container has its own user namespace.
	user bool
}

// joinOrder is the order of setns: the mount namespace last, because once
// in it the caller's paths (/proc, /sys) are no longer the host's.
var joinOrder = [...]specs.LinuxNamespaceType{
	specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
	specs.PIDNamespace, specs.CgroupNamespace, specs.MountNamespace,
}

// namespaceKinds are the namespace types the runtime knows: the name of
// each under /proc/PID/ns, and its clone flag (none for time, which the
// runtime only joins).
var namespaceKinds = map[specs.LinuxNamespaceType]struct {
	proc string
	flag uintptr
}{
	specs.PIDNamespace:     {"pid", unix.CLONE_NEWPID},
	specs.NetworkNamespace: {"net", unix.CLONE_NEWNET},
	specs.MountNamespace:   {"mnt", unix.CLONE_NEWNS},
	specs.IPCNamespace:     {"ipc", unix.CLONE_NEWIPC},
	specs.UTSNamespace:     {"uts", unix.CLONE_NEWUTS},
	specs.UserNamespace:    {"user", unix.CLONE_NEWUSER},
	specs.CgroupNamespace:  {"cgroup", unix.CLONE_NEWCGROUP},
	specs.TimeNamespace:    {"time", 0},
}

// procName is the file name of a namespace type under /proc/PID/ns, "" for
// an unknown type.
func procName(t specs.LinuxNamespaceType) string { return namespaceKinds[t].proc }

func cloneFlag(t specs.LinuxNamespaceType) uintptr { return namespaceKinds[t].flag }

// planNamespaces sorts a spec's namespaces into created and joined ones.
func planNamespaces(nss []specs.LinuxNamespace) (nsPlan, error) {
	var p nsPlan
	seen := map[specs.LinuxNamespaceType]bool{}
	byType := map[specs.LinuxNamespaceType]string{}
	for _, ns := range nss {
		if procName(ns.Type) == "" {
			return p, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown namespace type %q", ns.Type))
		}
		if seen[ns.Type] {
			return p, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("namespace %s listed twice", ns.Type))
		}
		seen[ns.Type] = true
		byType[ns.Type] = ns.Path
		switch {
		case ns.Type == specs.TimeNamespace:
			return p, errdefs.ErrNotImplemented.WithMessage("time namespaces are not supported")
		case ns.Path != "" && ns.Type == specs.UserNamespace:
			// setns into a user namespace needs a single-threaded process,
			// which a Go program never is.
			return p, errdefs.ErrNotImplemented.WithMessage("joining an existing user namespace is not supported")
		case ns.Path != "" && ns.Type == specs.MountNamespace:
			return p, errdefs.ErrNotImplemented.WithMessage("joining an existing mount namespace is not supported: a container needs its own to pivot into its root filesystem")
		case ns.Path == "":
			p.new = append(p.new, ns.Type)
			if ns.Type != specs.CgroupNamespace {
				p.flags |= cloneFlag(ns.Type)
			}
			if ns.Type == specs.UserNamespace {
				p.user = true
			}
		}
	}
	if !seen[specs.MountNamespace] {
		return p, errdefs.ErrInvalidArgument.WithMessage("the spec has no mount namespace: a container needs its own to pivot into its root filesystem")
	}
	for _, t := range joinOrder {
		if path := byType[t]; path != "" {
			p.joins = append(p.joins, nsJoin{Type: t, Path: path})
		}
	}
	return p, nil
}
