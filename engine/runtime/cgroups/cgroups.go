// Package cgroups places a container's processes in a cgroup, limits them,
// and reads what they use, on cgroup v1 (one hierarchy per controller, as on
// hybrid hosts) and cgroup v2 (the unified hierarchy).
//
// A Host describes the cgroup filesystems mounted on this machine; it is
// read once (Detect) and kept by whoever creates many containers. A
// Cgroup is one container's cgroup, named by its path relative to each
// hierarchy's root (/berth-1a2b3c/web-1); on v1 it is one directory per
// hierarchy, on v2 one directory.
//
// Lifecycle, as the runtime drives it:
//
//	cg := host.Cgroup("/berth-1a2b3c/web-1")
//	cg.Create()            // mkdir on every hierarchy; v1 cpuset inherits cpus and mems
//	cg.Set(resources)      // limits, from the spec's linux.resources
//	cg.Join(pid)           // or, on v2, clone the process into it (CloneFD)
//	cg.Stats(); cg.Freeze(); cg.Thaw(); cg.Procs()
//	cg.Kill()              // SIGKILL everything in it and wait until it is empty
//	cg.Destroy()           // rmdir everywhere
//
// What to write for a spec is computed as data (Plan) and tested without
// root; only applying it touches the host.
package cgroups

import (
	"errors"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version is the cgroup interface a host offers to containers.
type Version int

const (
	V1 Version = 1 // one hierarchy per controller (legacy and hybrid hosts)
	V2 Version = 2 // the unified hierarchy
)

// Hierarchy is one mounted cgroup v1 hierarchy.
type Hierarchy struct {
	Mountpoint  string   // /sys/fs/cgroup/memory
	Root        string   // the cgroup that the mount shows as its root, "/" on the host
	Controllers []string // memory; cpu, cpuacct when co-mounted
}

// Host is the cgroup layout of this machine.
type Host struct {
	Version Version
	// Unified is the cgroup2 mountpoint on a v2 host.
	Unified string
	// Hierarchies are the v1 controller hierarchies on a v1 host (named
	// hierarchies such as name=systemd, which have no controller, are left out).
	Hierarchies []Hierarchy
}

// Stats is what a container's processes use, for `stats` and `top`.
type Stats struct {
	MemoryUsage        uint64 // bytes, page cache included
	MemoryLimit        uint64 // bytes; 0 when unlimited
	MemoryMaxUsage     uint64 // bytes, high-water mark (v1; v2 memory.peak when present)
	MemoryInactiveFile uint64 // bytes of reclaimable page cache, which docker subtracts from usage
	CPUUsage           time.Duration
	CPUUser            time.Duration
	CPUSystem          time.Duration
	Pids               uint64
	PidsLimit          uint64 // 0 when unlimited
	IOReadBytes        uint64
	IOWriteBytes       uint64
	// OOMKills counts processes the kernel killed for exceeding the memory limit.
	OOMKills uint64
}

// ErrNotEmpty is returned by Destroy when processes remain in the cgroup.
var ErrNotEmpty = errors.New("cgroup still has processes")

// killTimeout bounds how long Kill waits for killed processes to leave.
const killTimeout = 10 * time.Second

// Cgroup is one container's cgroup, on every hierarchy of the host.
type Cgroup interface {
	// Create makes the cgroup and any missing parent. It is idempotent.
	Create() error
	// Set applies resource limits; warnings name what the host cannot do
	// and was skipped (an optional knob without its file).
	Set(r *specs.LinuxResources) (warnings []string, err error)
	// Join moves a process into the cgroup, on every hierarchy.
	Join(pid int) error
	// JoinThread moves the calling thread alone into the cgroup, on every
	// hierarchy (v1, where threads have cgroups of their own), so that a
	// child it clones is born there, as with CloneFD on v2. Unlike Join,
	// it does not wait for the RCU grace period that the kernel's first
	// process migration after a quiet spell waits for, holding
	// cgroup_mutex: a thread moving itself takes no threadgroup lock.
	// leave moves the thread back where it was, through descriptors opened
	// before the join (so it works from another mount namespace); until
	// then the thread's process is listed, and signalled, with the
	// cgroup's. The thread must be locked. On v2 it fails.
	JoinThread() (leave func() error, err error)
	// CloneFD opens the cgroup for clone3(CLONE_INTO_CGROUP), so that a
	// child is born inside it. ok is false on v1, where that is not possible.
	CloneFD() (fd int, ok bool, err error)
	// Procs lists the processes in the cgroup (host pids).
	Procs() ([]int, error)
	Freeze() error
	Thaw() error
	Frozen() (bool, error)
	// Signal sends sig to every process in the cgroup.
	Signal(sig syscall.Signal) error
	// Kill sends SIGKILL to every process in the cgroup, with the cgroup
	// frozen so that none can fork away, and waits until it is empty.
	Kill() error
	Stats() (*Stats, error)
	// OOMKills counts the processes killed for exceeding the memory limit.
	OOMKills() (uint64, error)
	// Destroy removes the cgroup. ENOENT is success; processes left in it are ErrNotEmpty.
	Destroy() error
	// Mounts lists the host directories to show a container at
	// /sys/fs/cgroup/NAME (one per v1 hierarchy; one, named "", on v2).
	Mounts() []Mount
}

// Mount is one cgroup directory as a container sees it under /sys/fs/cgroup.
type Mount struct {
	Name string // "memory", "cpu,cpuacct"; "" for the unified hierarchy
	Dir  string // the container's cgroup directory on the host
	// Aliases are symlinks to Name that the host has beside it (cpu and cpuacct for "cpu,cpuacct").
	Aliases []string
}
