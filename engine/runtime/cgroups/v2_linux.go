package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2 is a container's cgroup on the unified hierarchy.
type v2 struct {
	dir   string
	mount string
}

// wantControllers are the controllers a container's cgroup gets, when the
// host offers them.
const wantControllers = "cpu cpuset io memory pids hugetlb misc"

func (c *v2) Create() error {
	err := retryMkdir(c.mount, c.dir, func(dir string) error {
		return enableControllers(filepath.Dir(dir))
	})
	if err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	return nil
}

// enableControllers turns on, for the children of dir, every wanted
// controller that dir has.
func enableControllers(dir string) error {
	have, err := readFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	on, _ := readFile(filepath.Join(dir, "cgroup.subtree_control"))
	var add []string
	avail, enabled := strings.Fields(have), strings.Fields(on)
	for _, c := range strings.Fields(wantControllers) {
		if slices.Contains(avail, c) && !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " "))
}

func (c *v2) Set(r *specs.LinuxResources) ([]string, error) {
	ws, err := Plan(V2, r)
	if err != nil {
		return nil, err
	}
	warnings, err := apply(ws, func(string) (string, bool) { return c.dir, true })
	if err == nil && r != nil && len(r.Devices) > 0 {
		// Device access on v2 is an eBPF program attached to the cgroup.
		err = attachDeviceFilter(c.dir, r.Devices)
	}
	if r != nil && r.Memory != nil && r.Memory.DisableOOMKiller != nil && *r.Memory.DisableOOMKiller {
		warnings = append(warnings, "cgroup v2 cannot disable the OOM killer: disableOOMKiller ignored")
	}
	return warnings, err
}

func (c *v2) Join(pid int) error {
	if err := writeFile(filepath.Join(c.dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	return nil
}

func (c *v2) JoinThread() (func() error, error) {
	return nil, fmt.Errorf("join cgroup %s: a thread cannot join a v2 cgroup of its own: %w", c.dir, errors.ErrUnsupported)
}

func (c *v2) CloneFD() (int, bool, error) {
	fd, err := unix.Open(c.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, &os.PathError{Op: "open", Path: c.dir, Err: err}
	}
	return fd, true, nil
}

func (c *v2) Procs() ([]int, error) {
	pids, err := readProcs(filepath.Join(c.dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return pids, err
}

func (c *v2) Freeze() error { return c.setFrozen(true) }
func (c *v2) Thaw() error   { return c.setFrozen(false) }

func (c *v2) setFrozen(frozen bool) error {
	want := "0"
	if frozen {
		want = "1"
	}
	if err := writeFile(filepath.Join(c.dir, "cgroup.freeze"), want); err != nil {
		return err
	}
	deadline := time.Now().Add(killTimeout)
	for {
		ev, err := readKeyed(filepath.Join(c.dir, "cgroup.events"))
		if err != nil {
			return err
		}
		if (ev["frozen"] == 1) == frozen {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: frozen is not %s after %v", c.dir, want, killTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *v2) Frozen() (bool, error) {
	s, err := readFile(filepath.Join(c.dir, "cgroup.freeze"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return s == "1", err
}

func (c *v2) Signal(sig syscall.Signal) error {
	pids, err := c.Procs()
	if err != nil {
		return err
	}
	return signalAll(pids, sig)
}

func (c *v2) Kill() error {
	procs := filepath.Join(c.dir, "cgroup.procs")
	if pids, err := readProcs(procs); errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0) {
		return nil
	}
	// cgroup.kill (Linux 5.14) kills the whole cgroup atomically.
	if err := writeFile(filepath.Join(c.dir, "cgroup.kill"), "1"); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := c.Freeze(); err != nil {
			return err
		}
		err := c.Signal(syscall.SIGKILL)
		if terr := c.Thaw(); err == nil {
			err = terr
		}
		if err != nil {
			return err
		}
	}
	return waitEmpty(procs, killTimeout)
}

func (c *v2) Stats() (*Stats, error) {
	s := &Stats{}
	s.MemoryUsage, _ = readUint(filepath.Join(c.dir, "memory.current"))
	s.MemoryLimit, _ = readUint(filepath.Join(c.dir, "memory.max"))
	s.MemoryMaxUsage, _ = readUint(filepath.Join(c.dir, "memory.peak"))
	if st, err := readKeyed(filepath.Join(c.dir, "memory.stat")); err == nil {
		s.MemoryInactiveFile = st["inactive_file"]
	}
	if st, err := readKeyed(filepath.Join(c.dir, "cpu.stat")); err == nil {
		s.CPUUsage = time.Duration(st["usage_usec"]) * time.Microsecond
		s.CPUUser = time.Duration(st["user_usec"]) * time.Microsecond
		s.CPUSystem = time.Duration(st["system_usec"]) * time.Microsecond
	}
	s.Pids, _ = readUint(filepath.Join(c.dir, "pids.current"))
	s.PidsLimit, _ = readUint(filepath.Join(c.dir, "pids.max"))
	if b, err := os.ReadFile(filepath.Join(c.dir, "io.stat")); err == nil {
		// 8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0
		for _, f := range strings.Fields(string(b)) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				s.IOReadBytes += n
			case "wbytes":
				s.IOWriteBytes += n
			}
		}
	}
	s.OOMKills, _ = c.OOMKills()
	return s, nil
}

func (c *v2) OOMKills() (uint64, error) {
	ev, err := readKeyed(filepath.Join(c.dir, "memory.events"))
	if err != nil {
		return 0, err
	}
	return ev["oom_kill"], nil
}

func (c *v2) Destroy() error { return rmdir(c.dir, time.Second) }

func (c *v2) Mounts() []Mount { return []Mount{{Dir: c.dir}} }
