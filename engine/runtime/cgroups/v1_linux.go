package cgroups

import (
	"bufio"
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
)

// v1Unlimited is the value memory.limit_in_bytes reads when no limit is set
// (the largest multiple of the page size in an int64).
const v1Unlimited = 1 << 62

type v1Dir struct {
	dir         string
	mount       string
	root        string // the cgroup the mount shows as its root
	controllers []string
}

// v1 is a container's cgroup on a cgroup v1 host: one directory per hierarchy.
type v1 struct {
	hier []v1Dir
	dirs map[string]string // controller -> directory
}

func (c *v1) dirOf(ctrl string) (string, bool) {
	d, ok := c.dirs[ctrl]
	return d, ok
}

func (c *v1) Create() error {
	var errs []error
	for _, h := range c.hier {
		var made func(string) error
		if slices.Contains(h.controllers, "cpuset") {
			made = initCpuset
		}
		if err := retryMkdir(h.mount, h.dir, made); err != nil {
			errs = append(errs, fmt.Errorf("create cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// initCpuset fills a new cpuset cgroup's cpus and mems from its parent (a
// new v1 cpuset starts empty, and no process may join an empty one), and
// sets clone_children so that its own children are born filled in (then
// a container's cgroup needs nothing but its mkdir).
func initCpuset(dir string) error {
	parent := filepath.Dir(dir)
	filled := false
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if cur != "" {
			continue
		}
		v, err := readFile(filepath.Join(parent, f))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f), v); err != nil {
			return err
		}
		filled = true
	}
	if !filled {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.clone_children"), "1")
}

func (c *v1) Set(r *specs.LinuxResources) ([]string, error) {
	ws, err := Plan(V1, r)
	if err != nil {
		return nil, err
	}
	return apply(ws, c.dirOf)
}

func (c *v1) Join(pid int) error {
	p := strconv.Itoa(pid)
	for _, h := range c.hier {
		if err := writeFile(filepath.Join(h.dir, "cgroup.procs"), p); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	return nil
}

func (c *v1) JoinThread() (func() error, error) {
	at, err := readMembership("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	var back []int
	leave := func() error {
		var errs []error
		for _, fd := range back {
			// "0" is the writing thread.
			if _, err := syscall.Write(fd, []byte("0")); err != nil {
				errs = append(errs, fmt.Errorf("leave cgroup: %w", err))
			}
			syscall.Close(fd)
		}
		back = nil
		return errors.Join(errs...)
	}
	for _, h := range c.hier {
		cur, ok := at[strings.Join(h.controllers, ",")]
		if !ok {
			_ = leave()
			return nil, fmt.Errorf("join cgroup: this thread is in no cgroup of hierarchy %s", h.mount)
		}
		dir, err := dirIn(h.mount, h.root, cur)
		if err != nil {
			_ = leave()
			return nil, err
		}
		fd, err := syscall.Open(filepath.Join(dir, "tasks"), syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			_ = leave()
			return nil, fmt.Errorf("join cgroup: %w", &os.PathError{Op: "open", Path: filepath.Join(dir, "tasks"), Err: err})
		}
		back = append(back, fd)
	}
	for _, h := range c.hier {
		if err := writeFile(filepath.Join(h.dir, "tasks"), "0"); err != nil {
			_ = leave()
			return nil, fmt.Errorf("join cgroup: %w", err)
		}
	}
	return leave, nil
}

func (c *v1) CloneFD() (int, bool, error) { return -1, false, nil }

// procsFile is the cgroup.procs of one hierarchy: every hierarchy lists the
// same processes, freezer's is as good as any.
func (c *v1) procsFile() string {
	for _, ctrl := range []string{"freezer", "pids", "memory"} {
		if d, ok := c.dirs[ctrl]; ok {
			return filepath.Join(d, "cgroup.procs")
		}
	}
	return filepath.Join(c.hier[0].dir, "cgroup.procs")
}

func (c *v1) Procs() ([]int, error) {
	pids, err := readProcs(c.procsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return pids, err
}

func (c *v1) Freeze() error { return c.setFreezer("FROZEN") }
func (c *v1) Thaw() error   { return c.setFreezer("THAWED") }

func (c *v1) setFreezer(want string) error {
	dir, ok := c.dirs["freezer"]
	if !ok {
		return fmt.Errorf("the freezer cgroup controller is not mounted on this host")
	}
	state := filepath.Join(dir, "freezer.state")
	deadline := time.Now().Add(killTimeout)
	// A task can block freezing: one caught in execve waits for its other
	// threads to exit, and frozen threads never do. A freeze that stays
	// FREEZING is thawed and tried again, each round waiting longer, as
	// runc does; the blocking task moves on while thawed.
	round := time.Millisecond
	for {
		if err := writeFile(state, want); err != nil {
			return err
		}
		roundEnd := time.Now().Add(round)
		for {
			got, err := readFile(state)
			if err != nil {
				return err
			}
			if got == want {
				return nil
			}
			if time.Now().After(roundEnd) {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if time.Now().After(deadline) {
			got, _ := readFile(state)
			if want == "FROZEN" {
				_ = writeFile(state, "THAWED")
			}
			return fmt.Errorf("%s: still %s after %v", state, got, killTimeout)
		}
		if want == "FROZEN" {
			if err := writeFile(state, "THAWED"); err != nil {
				return err
			}
			time.Sleep(round / 4)
		}
		if round < 100*time.Millisecond {
			round *= 2
		}
	}
}

func (c *v1) Frozen() (bool, error) {
	dir, ok := c.dirs["freezer"]
	if !ok {
		return false, nil
	}
	s, err := readFile(filepath.Join(dir, "freezer.state"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return s == "FROZEN" || s == "FREEZING", err
}

func (c *v1) Signal(sig syscall.Signal) error {
	pids, err := c.Procs()
	if err != nil {
		return err
	}
	return signalAll(pids, sig)
}

func (c *v1) Kill() error {
	procs := c.procsFile()
	if pids, err := readProcs(procs); errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0) {
		return nil // the common case at delete: nothing left to kill
	}
	frozen := false
	if _, ok := c.dirs["freezer"]; ok {
		// Frozen, no process can fork a child that the list below misses.
		// A freeze that does not take (a task stuck in execve) is thawed
		// by Freeze; the processes are then killed one round at a time.
		frozen = c.Freeze() == nil
	}
	if frozen {
		err := c.Signal(syscall.SIGKILL)
		if terr := c.Thaw(); err == nil {
			err = terr
		}
		if err != nil {
			return err
		}
	} else {
		for range 10 {
			pids, err := c.Procs()
			if err != nil || len(pids) == 0 {
				break
			}
			_ = signalAll(pids, syscall.SIGKILL)
		}
	}
	return waitEmpty(procs, killTimeout)
}

func (c *v1) Stats() (*Stats, error) {
	s := &Stats{}
	if d, ok := c.dirs["memory"]; ok {
		s.MemoryUsage, _ = readUint(filepath.Join(d, "memory.usage_in_bytes"))
		s.MemoryMaxUsage, _ = readUint(filepath.Join(d, "memory.max_usage_in_bytes"))
		if l, err := readUint(filepath.Join(d, "memory.limit_in_bytes")); err == nil && l < v1Unlimited {
			s.MemoryLimit = l
		}
		if st, err := readKeyed(filepath.Join(d, "memory.stat")); err == nil {
			s.MemoryInactiveFile = st["total_inactive_file"]
		}
		s.OOMKills, _ = c.OOMKills()
	}
	if d, ok := c.dirs["cpuacct"]; ok {
		if ns, err := readUint(filepath.Join(d, "cpuacct.usage")); err == nil {
			s.CPUUsage = time.Duration(ns)
		}
		if st, err := readKeyed(filepath.Join(d, "cpuacct.stat")); err == nil {
			// In USER_HZ, which Linux fixes at 100 for userspace.
			s.CPUUser = time.Duration(st["user"]) * 10 * time.Millisecond
			s.CPUSystem = time.Duration(st["system"]) * 10 * time.Millisecond
		}
	}
	if d, ok := c.dirs["pids"]; ok {
		s.Pids, _ = readUint(filepath.Join(d, "pids.current"))
		s.PidsLimit, _ = readUint(filepath.Join(d, "pids.max"))
	}
	if d, ok := c.dirs["blkio"]; ok {
		s.IOReadBytes, s.IOWriteBytes = blkioBytes(filepath.Join(d, "blkio.throttle.io_service_bytes_recursive"))
	}
	return s, nil
}

// blkioBytes sums the Read and Write lines ("8:0 Read 4096") of a blkio file.
func blkioBytes(path string) (read, write uint64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(fs[2], 10, 64)
		switch fs[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

func (c *v1) OOMKills() (uint64, error) {
	d, ok := c.dirs["memory"]
	if !ok {
		return 0, nil
	}
	st, err := readKeyed(filepath.Join(d, "memory.oom_control"))
	if err != nil {
		return 0, err
	}
	return st["oom_kill"], nil
}

func (c *v1) Destroy() error {
	var errs []error
	for _, h := range c.hier {
		if err := rmdir(h.dir, time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *v1) Mounts() []Mount {
	out := make([]Mount, 0, len(c.hier))
	for _, h := range c.hier {
		name := filepath.Base(h.mount)
		m := Mount{Name: name, Dir: h.dir}
		if len(h.controllers) > 1 {
			for _, ctrl := range h.controllers {
				if ctrl != name {
					m.Aliases = append(m.Aliases, ctrl)
				}
			}
		}
		out = append(out, m)
	}
	return out
}
