package runtime

import (
	"errors"
	"fmt"
	"slices"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

// Prepared is a container's setup stage started ahead of Create: cloned
// into its new namespaces and through its Go start-up (about half of a
// create), it waits for the bootstrap that CreatePrepared sends. The
// caller does its own work (mounting the root filesystem, writing the
// spec) meanwhile.
//
// It holds the process and its cgroup (the container's, without limits
// until CreatePrepared sets the spec's), no state directory. Its caller
// owns the stdio it was given, as with Create, and must Close it if it
// never reaches CreatePrepared.
type Prepared struct {
	r  *Runtime
	c  *child
	id string
	// ns is how it was cloned; joinNet is a network namespace it enters
	// itself, once CreatePrepared names it.
	ns      nsPlan
	joinNet bool
	io      IO
	cgroup  string
}

// Prepare starts the setup stage of container id, whose spec will list
// namespaces: the same types, with a path where one is joined; and no
// cgroupsPath: the stage is put in the container's default cgroup. Only a
// network namespace may be joined (the stage enters it on its own thread
// once it learns the path); any other join, and a user namespace, cannot
// be prepared and are refused with ErrNotImplemented.
//
// The stage is cloned into every new namespace but the mount namespace,
// which it unshares on its own thread once bootstrapped: a copy taken at
// the clone would miss the root filesystem mounted in the meantime (the
// host's mounts need not propagate).
func (r *Runtime) Prepare(id string, namespaces []specs.LinuxNamespace, stdio IO) (*Prepared, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	ns, err := planNamespaces(namespaces)
	if err != nil {
		return nil, err
	}
	joinNet := false
	for _, j := range ns.joins {
		if j.Type != specs.NetworkNamespace {
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("prepare: a joined %s namespace must be entered before the clone", j.Type))
		}
		joinNet = true
	}
	if ns.user {
		return nil, errdefs.ErrNotImplemented.WithMessage("prepare: a user namespace's maps are written at the clone")
	}
	ns.joins = nil
	p := &Prepared{r: r, id: id, ns: ns, joinNet: joinNet, io: stdio, cgroup: r.defaultCgroup(id)}
	// The cgroup as Create makes it (see there), without resources.
	warmed := make(chan struct{})
	go func() { r.host.WarmMigration(); close(warmed) }()
	defer func() { <-warmed }()
	cg, err := r.host.Cgroup(p.cgroup)
	if err != nil {
		return nil, err
	}
	cgfd := -1
	if r.host.Version == cgroups.V2 {
		if err := cg.Create(); err != nil {
			return nil, err
		}
		fd, _, err := cg.CloneFD()
		if err != nil {
			p.removeCgroup()
			return nil, err
		}
		cgfd = fd
		defer unix.Close(cgfd)
	}
	clone := ns
	clone.flags &^= unix.CLONE_NEWNS
	if p.c, err = r.spawn(spawnRequest{ns: clone, pidfd: -1, cgroupFD: cgfd, io: stdio, prepared: true}); err != nil {
		p.removeCgroup()
		return nil, err
	}
	if cgfd < 0 {
		err := cg.Create()
		if err == nil {
			err = cg.Join(p.c.pid)
		}
		if err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// removeCgroup removes the prepared stage's cgroup, once it is empty.
func (p *Prepared) removeCgroup() {
	cg, err := p.r.host.Cgroup(p.cgroup)
	if err != nil {
		return
	}
	if err := cg.Destroy(); err != nil {
		p.r.log.Warn("container "+p.id+": remove the cgroup of a prepared setup stage: "+err.Error(), "container", p.id)
	}
	p.r.removeParentIfEmpty(p.cgroup)
}

// Pid is the prepared setup stage's pid.
func (p *Prepared) Pid() int { return p.c.pid }

// Close ends a prepared setup stage that will not be used, and removes
// its cgroup. Its stdio stays the caller's.
func (p *Prepared) Close() {
	if p != nil && p.c != nil {
		p.c.abort()
		p.c = nil
		p.removeCgroup()
	}
}

// fits says whether the prepared stage can become a container whose
// namespaces are planned as ns: cloned with the same flags, and joining
// nothing but the network namespace it was prepared to enter.
func (p *Prepared) fits(id string, ns nsPlan, cgroup string) (netPath string, err error) {
	if p.c == nil {
		return "", errors.New("already used or closed")
	}
	if id != p.id || cgroup != p.cgroup {
		return "", fmt.Errorf("it was prepared for container %s in cgroup %s", p.id, p.cgroup)
	}
	if ns.flags != p.ns.flags || ns.user || !slices.Equal(ns.new, p.ns.new) {
		return "", errors.New("its namespaces differ from the spec's")
	}
	for _, j := range ns.joins {
		if j.Type != specs.NetworkNamespace || !p.joinNet {
			return "", fmt.Errorf("the spec joins a %s namespace it was not prepared for", j.Type)
		}
		netPath = j.Path
	}
	if p.joinNet && netPath == "" {
		return "", errors.New("it was prepared to join a network namespace the spec does not name")
	}
	return netPath, nil
}
