package runtime

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

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
	// spare is set until a container claims the stage (PrepareSpare).
	spare bool
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
	ns, joinNet, err := planPrepared(namespaces)
	if err != nil {
		return nil, err
	}
	p := &Prepared{r: r, id: id, ns: ns, joinNet: joinNet, io: stdio, cgroup: r.defaultCgroup(id)}
	clone := ns
	clone.flags &^= unix.CLONE_NEWNS
	if err := p.start(clone, false); err != nil {
		return nil, err
	}
	return p, nil
}

// planPrepared plans the namespaces of a container whose stage is started
// ahead of its create: it may join a network namespace (the stage enters
// it once it learns the path), nothing else, and have no user namespace.
// The joins are left out of the plan.
func planPrepared(namespaces []specs.LinuxNamespace) (ns nsPlan, joinNet bool, err error) {
	if ns, err = planNamespaces(namespaces); err != nil {
		return ns, false, err
	}
	for _, j := range ns.joins {
		if j.Type != specs.NetworkNamespace {
			return ns, false, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("prepare: a joined %s namespace must be entered before the clone", j.Type))
		}
		joinNet = true
	}
	if ns.user {
		return ns, false, errdefs.ErrNotImplemented.WithMessage("prepare: a user namespace's maps are written at the clone")
	}
	ns.joins = nil
	return ns, joinNet, nil
}

// start clones the stage into clone's namespaces, born in p.cgroup (made
// as Create makes a container's, without resources). An idle stage goes
// on with its start-up at SCHED_IDLE policy, on CPU time nothing else
// wants, once exec'd.
func (p *Prepared) start(clone nsPlan, idle bool) error {
	r := p.r
	cg, err := r.host.Cgroup(p.cgroup)
	if err != nil {
		return err
	}
	if err := cg.Create(); err != nil {
		return err
	}
	req := spawnRequest{ns: clone, pidfd: -1, cgroupFD: -1, io: p.io, prepared: true}
	if r.host.Version == cgroups.V2 {
		fd, _, err := cg.CloneFD()
		if err != nil {
			p.removeCgroup()
			return err
		}
		req.cgroupFD = fd
		defer unix.Close(fd)
	} else {
		req.cgroup = cg
	}
	p.c, err = r.spawn(req)
	if err != nil {
		p.removeCgroup()
		return err
	}
	if idle {
		// Its threads to come inherit the policy of this one, which runs
		// the Go start-up and the setup, and execs.
		if err := unix.SchedSetAttr(p.c.pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0); err != nil {
			p.Close()
			return fmt.Errorf("idle priority: %w", err)
		}
	}
	return nil
}

// PrepareSpare starts a setup stage that no container has claimed yet, so
// that the next container's create finds one through its start-up: Claim
// gives it to a container. It is cloned into a new pid namespace only (a
// process cannot change its own); it unshares the container's other new
// namespaces on its own thread once claimed. It waits in a spare
// cgroup of the state root, and goes through its start-up at idle
// priority (SCHED_IDLE).
func (r *Runtime) PrepareSpare(stdio IO) (*Prepared, error) {
	p := &Prepared{r: r, spare: true, io: stdio, cgroup: r.spareCgroup()}
	p.ns.flags = unix.CLONE_NEWPID
	if err := p.start(p.ns, true); err != nil {
		return nil, err
	}
	return p, nil
}

// spareCgroupPrefix names the cgroups of spare stages, beside the
// containers' (whose names are ids, never this).
const spareCgroupPrefix = "spare-"

var spareCount atomic.Uint64

func (r *Runtime) spareCgroup() string {
	return fmt.Sprintf("/%s/%s%d-%d", r.cfg.CgroupParent, spareCgroupPrefix, os.Getpid(), spareCount.Add(1))
}

// RemoveSpareCgroups removes the cgroups of spare stages that died
// unclaimed with the process that started them (a killed monitor); those
// of live stages are busy and stay.
func (r *Runtime) RemoveSpareCgroups() {
	r.host.RemoveChildrenIf("/"+r.cfg.CgroupParent, func(name string) bool {
		return strings.HasPrefix(name, spareCgroupPrefix)
	})
}

// Claim gives spare stage p to container id, whose spec will list
// namespaces (as for Prepare): its cgroup becomes the container's, it
// gets back to normal priority, and it makes its other new namespaces at
// once, while the create goes on (its mount namespace waits for the
// bootstrap, after the root filesystem is mounted). After Claim, p is
// id's prepared stage. A spec without a new pid namespace cannot claim
// it, nor can one that Prepare refuses: those get ErrNotImplemented, and
// p stays a spare; after any other failure p is of no use.
func (p *Prepared) Claim(id string, namespaces []specs.LinuxNamespace) error {
	if p.c == nil || !p.spare {
		return errors.New("claim: not an unclaimed spare stage")
	}
	if err := checkID(id); err != nil {
		return err
	}
	ns, joinNet, err := planPrepared(namespaces)
	if err != nil {
		return err
	}
	if ns.flags&unix.CLONE_NEWPID == 0 {
		return errdefs.ErrNotImplemented.WithMessage("claim: a spare stage is in a pid namespace of its own")
	}
	cgroup := p.r.defaultCgroup(id)
	if err := p.r.host.Move(p.cgroup, cgroup, p.c.pid); err != nil {
		return err
	}
	if err := normalPriority(p.c.pid); err != nil {
		p.r.log.Warn("container "+id+": spare setup stage: "+err.Error(), "container", id)
	}
	p.spare, p.id, p.cgroup, p.joinNet = false, id, cgroup, joinNet
	p.ns = ns
	if unshare := ns.flags &^ (unix.CLONE_NEWPID | unix.CLONE_NEWNS); unshare != 0 {
		if err := p.c.ch.send(&message{Type: msgUnshare, Unshare: unshare}); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
	}
	return nil
}

// normalPriority puts every thread of pid back to SCHED_OTHER, nice 0.
func normalPriority(pid int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("normal priority for thread %d: %w", tid, err))
		}
	}
	return errors.Join(errs...)
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
	if p.spare {
		return "", errors.New("it is a spare no container claimed")
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
