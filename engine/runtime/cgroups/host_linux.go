package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mountinfo"
)

// isController reports whether a cgroup v1 mount option names a controller.
func isController(o string) bool {
	switch o {
	case "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
		"blkio", "perf_event", "hugetlb", "pids", "rdma", "misc":
		return true
	}
	return false
}

// Detect reads the cgroup layout of this machine from /proc/self/mountinfo.
// A host whose /sys/fs/cgroup is a cgroup2 mount is v2; any other is v1,
// with the unified hierarchy of a hybrid host ignored (its controllers are
// all bound to v1 hierarchies).
func Detect() (*Host, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("cgroups: statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &Host{Version: V2, Unified: "/sys/fs/cgroup"}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	h := &Host{Version: V1}
	seen := map[string]bool{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		hier, ok := parseV1Mount(s.Text())
		if !ok {
			continue
		}
		key := strings.Join(hier.Controllers, ",")
		if seen[key] {
			continue // the same hierarchy mounted twice
		}
		seen[key] = true
		h.Hierarchies = append(h.Hierarchies, hier)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	if len(h.Hierarchies) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup v1 controller is mounted and /sys/fs/cgroup is not cgroup2")
	}
	return h, nil
}

// parseV1Mount parses one mountinfo line and returns the hierarchy if it
// is a cgroup v1 mount with at least one controller.
func parseV1Mount(line string) (Hierarchy, bool) {
	// 36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Hierarchy{}, false
	}
	pf, qf := strings.Fields(pre), strings.Fields(post)
	if len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" {
		return Hierarchy{}, false
	}
	var ctrls []string
	for _, o := range strings.Split(qf[2], ",") {
		if isController(o) {
			ctrls = append(ctrls, o)
		}
	}
	if len(ctrls) == 0 {
		return Hierarchy{}, false
	}
	return Hierarchy{Mountpoint: mountinfo.Unescape(pf[4]), Root: mountinfo.Unescape(pf[3]), Controllers: ctrls}, true
}

// dirIn returns the directory of cgroup path in a hierarchy mounted at
// mountpoint showing root.
func dirIn(mountpoint, root, path string) (string, error) {
	path = filepath.Clean("/" + path)
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("cgroups: %s is outside the hierarchy at %s (root %s)", path, mountpoint, root)
	}
	return filepath.Join(mountpoint, rel), nil
}

// Cgroup returns the container cgroup at path (relative to each
// hierarchy's root, such as /berth-1a2b3c/web-1). It touches nothing.
func (h *Host) Cgroup(path string) (Cgroup, error) {
	if h.Version == V2 {
		dir, err := dirIn(h.Unified, "/", path)
		if err != nil {
			return nil, err
		}
		return &v2{dir: dir, mount: h.Unified}, nil
	}
	c := &v1{dirs: map[string]string{}}
	for _, hier := range h.Hierarchies {
		dir, err := dirIn(hier.Mountpoint, hier.Root, path)
		if err != nil {
			return nil, err
		}
		c.hier = append(c.hier, v1Dir{dir: dir, mount: hier.Mountpoint, root: hier.Root, controllers: hier.Controllers})
		for _, ctrl := range hier.Controllers {
			c.dirs[ctrl] = dir
		}
	}
	return c, nil
}

// dirs are the directories of the cgroup at path, one per hierarchy (on
// v2, one), leaving out hierarchies whose root is not above it.
func (h *Host) dirs(path string) []string {
	if h.Version == V2 {
		if dir, err := dirIn(h.Unified, "/", path); err == nil {
			return []string{dir}
		}
		return nil
	}
	var out []string
	for _, hier := range h.Hierarchies {
		if dir, err := dirIn(hier.Mountpoint, hier.Root, path); err == nil {
			out = append(out, dir)
		}
	}
	return out
}

// RemoveIfEmpty removes the cgroup at path on every hierarchy where it has
// no children and no processes; it is how the parent of a state root's
// containers goes away with the last of them.
func (h *Host) RemoveIfEmpty(path string) {
	for _, dir := range h.dirs(path) {
		_ = unix.Rmdir(dir)
	}
}

// RemoveChildrenIf removes, on every hierarchy, the child cgroups of
// parent whose names match; a cgroup that still holds a process stays.
func (h *Host) RemoveChildrenIf(parent string, match func(name string) bool) {
	for _, dir := range h.dirs(parent) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() && match(e.Name()) {
				_ = unix.Rmdir(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// Move makes the cgroup at from, holding process pid, the cgroup at to
// (under the same parent). On v1 each hierarchy's directory is renamed,
// which moves no process: no migration, none of its wait for an RCU grace
// period. v2 refuses renames: there to is made, pid joins it, and from is
// removed. On failure nothing has moved.
func (h *Host) Move(from, to string, pid int) error {
	src, err := h.Cgroup(from)
	if err != nil {
		return err
	}
	dst, err := h.Cgroup(to)
	if err != nil {
		return err
	}
	if h.Version == V2 {
		if err := dst.Create(); err != nil {
			return err
		}
		if err := dst.Join(pid); err != nil {
			_ = dst.Destroy()
			return err
		}
		_ = src.Destroy()
		return nil
	}
	s, d := src.(*v1), dst.(*v1)
	for i := range s.hier {
		if err := os.Rename(s.hier[i].dir, d.hier[i].dir); err != nil {
			for j := range i {
				_ = os.Rename(d.hier[j].dir, s.hier[j].dir)
			}
			return fmt.Errorf("move cgroup %s to %s: %w", from, to, err)
		}
	}
	return nil
}

// WarmMigration moves this process into the cgroup it is already in, on
// one v1 hierarchy, and returns when done. It changes nothing; it is for
// its side effect: the first cgroup v1 migration after a quiet spell
// waits for an RCU grace period (several milliseconds) before it takes
// the kernel's cgroup_threadgroup_rwsem, and migrations that follow
// within a grace period do not. Run concurrently with the work that
// precedes a process's Join (an exec's), it takes that wait off the
// critical path. (A container's first process needs no Join: it is born
// in its cgroup, see Cgroup.JoinThread.) On v2 it does nothing.
func (h *Host) WarmMigration() {
	if h.Version != V1 || len(h.Hierarchies) == 0 {
		return
	}
	hier := h.Hierarchies[0]
	at, err := readMembership("/proc/self/cgroup")
	if err != nil {
		return
	}
	if cur, ok := at[strings.Join(hier.Controllers, ",")]; ok {
		if dir, err := dirIn(hier.Mountpoint, hier.Root, cur); err == nil {
			_ = writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(os.Getpid()))
		}
	}
}

// readMembership reads a /proc cgroup file (/proc/self/cgroup, say): each
// hierarchy's controllers, comma-separated ("" for v2), to the cgroup the
// task is in there.
func readMembership(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	at := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 {
			at[f[1]] = f[2]
		}
	}
	return at, nil
}
