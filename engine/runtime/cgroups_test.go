package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
	"github.com/berth-dev/berth/internal/testutil"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func hostCgroupVersion(t *testing.T) cgroups.Version {
	t.Helper()
	h, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	return h.Version
}

// TestCgroupLimits sets each limit and reads it back from inside the
// container, through its /sys/fs/cgroup.
func TestCgroupLimits(t *testing.T) {
	t.Parallel()
	var script, want string
	if hostCgroupVersion(t) == cgroups.V1 {
		script = "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes " +
			"cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus pids/pids.max"
		want = "67108864\n33554432\n512\n50000\n100000\n0\n100\n"
	} else {
		script = "cd /sys/fs/cgroup; cat memory.max memory.low cpu.weight cpu.max cpuset.cpus pids.max"
		want = "67108864\n33554432\n20\n50000 100000\n0\n100\n"
	}
	res := sh(t, script, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0"}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(100)}
	})
	if res.stdout != want {
		t.Fatalf("got %q, want %q (stderr %q)", res.stdout, want, res.stderr)
	}
}

// TestMemoryLimitEndsInAnOOMKillThatStateReports: a process that
// allocates past the limit is killed by the kernel, and State says so.
func TestMemoryLimitEndsInAnOOMKillThatStateReports(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"}, func(s *specs.Spec) {
		// memory+swap as large as memory: no swapping out of trouble.
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	})
	s := start(t, rt, "oom", b)
	res := s.wait(t)
	if !res.status.Signaled() || res.status.Signal() != unix.SIGKILL {
		t.Fatalf("dd ended with %v, want killed by SIGKILL (stderr %q)", res.status, res.stderr)
	}
	st, err := rt.State(context.Background(), "oom")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != Stopped || !st.OOMKilled {
		t.Fatalf("state %+v, want stopped and OOM-killed", st)
	}
	// Without the limit the same command is fine: the kill was the limit's.
	b = bundle(t, root, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"}, nil)
	if res := run(t, rt, "no-oom", b); res.code() != 0 {
		t.Fatalf("without a limit: status %v (stderr %q)", res.status, res.stderr)
	}
}

func TestPidsLimitMakesForkFail(t *testing.T) {
	t.Parallel()
	res := sh(t, "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; echo started", func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(5)}
	})
	if !strings.Contains(res.stderr, "can't fork") {
		t.Fatalf("no fork failed under pids.max=5: stdout %q stderr %q", res.stdout, res.stderr)
	}
	// The same loop without the limit forks fine.
	res = sh(t, "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; echo started", nil)
	if strings.Contains(res.stderr, "fork") || res.stdout != "started\n" {
		t.Fatalf("without a limit: stdout %q stderr %q", res.stdout, res.stderr)
	}
}

// TestTinyPidsLimitStillStarts guards the order of setup: the pids limit is
// applied once the Go setup stage (and its threads) is done.
func TestTinyPidsLimitStillStarts(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo up", func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(1)}
	})
	if res.stdout != "up\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestStatsAndPids(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "sleep 30 & sleep 30; true"}, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(256 << 20)}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)}
	})
	s := start(t, rt, "stats", b)
	ctx := context.Background()
	var pids []int
	testutil.Eventually(t, 5*time.Second, func() error {
		var err error
		pids, err = rt.Pids(ctx, "stats")
		if err == nil && len(pids) != 3 {
			err = fmt.Errorf("pids %v, want the shell and two sleeps", pids)
		}
		return err
	})
	found := false
	for _, p := range pids {
		found = found || p == s.Pid
	}
	if !found {
		t.Fatalf("pids %v lack the container's process %d", pids, s.Pid)
	}
	st, err := rt.Stats(ctx, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryUsage == 0 || st.MemoryLimit != 256<<20 || st.Pids != 3 || st.PidsLimit != 50 || st.CPUUsage == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := rt.Kill(ctx, "stats", unix.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	if pids, _ := rt.Pids(ctx, "stats"); len(pids) != 0 {
		t.Fatalf("processes left after kill --all: %v", pids)
	}
}

// TestPauseFreezesTheProcesses watches a busy counter that the container
// writes to a host directory: frozen, it stops; resumed, it moves again.
func TestPauseFreezesTheProcesses(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	// Renamed into place, so a read never catches the file emptied by a
	// redirection (two such reads would look like a stopped counter).
	b := bundle(t, root, []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /data/c.new; mv /data/c.new /data/c; done"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"bind"}})
	})
	s := start(t, rt, "pause", b)
	ctx := context.Background()
	counter := func() string { b, _ := os.ReadFile(filepath.Join(data, "c")); return string(b) }
	moving := func(want bool) func() error {
		last := counter()
		return func() error {
			cur := counter()
			defer func() { last = cur }()
			if (cur != last) != want {
				return fmt.Errorf("counter at %q, moving=%v, want %v", cur, cur != last, want)
			}
			return nil
		}
	}
	testutil.Eventually(t, 10*time.Second, moving(true))
	if err := rt.Pause(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, moving(false))
	if st, _ := rt.State(ctx, "pause"); st.Status != Paused {
		t.Fatalf("status %s, want paused", st.Status)
	}
	if err := rt.Resume(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, moving(true))
	if err := rt.Kill(ctx, "pause", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
}

func TestCgroupsPathFromTheSpec(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = "project/web-1"
	})
	start(t, rt, "custom", b)
	st, err := rt.State(context.Background(), "custom")
	if err != nil {
		t.Fatal(err)
	}
	if want := "/" + rt.cfg.CgroupParent + "/project/web-1"; st.Cgroup != want {
		t.Fatalf("cgroup %s, want %s", st.Cgroup, want)
	}
	if err := rt.Delete(context.Background(), "custom", DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// project/ is the spec's, not the runtime's: delete leaves it; remove it
	// here so that the leak check sees a clean root.
	rt.host.RemoveIfEmpty("/" + rt.cfg.CgroupParent + "/project")
	rt.host.RemoveIfEmpty("/" + rt.cfg.CgroupParent)
}

// TestSmallMemoryLimitStillStarts guards the setup stage's own footprint:
// a Go program, it must fit in a container limited to a few megabytes
// (Docker's minimum is 6 MB).
func TestSmallMemoryLimitStillStarts(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo up", func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(6 << 20), Swap: i64(6 << 20)}
	})
	if res.stdout != "up\n" {
		t.Fatalf("got %q (status %v, stderr %q)", res.stdout, res.status, res.stderr)
	}
}

// TestProcessIsBornInItsCgroup: a container's process is in its cgroup on
// every hierarchy whether it was created, prepared, or a claimed spare (on
// v1 the thread that clones it joins the cgroup first), and no thread of
// the runtime's process is left there.
func TestProcessIsBornInItsCgroup(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	check := func(what string, pid int, want string) {
		t.Helper()
		if err := inCgroup(rt.host, fmt.Sprintf("/proc/%d/cgroup", pid), want); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/cgroup")
		for _, task := range tasks {
			if inCgroup(rt.host, task, want) == nil {
				t.Errorf("%s: %s of the runtime's own process is in the container's cgroup %s", what, filepath.Dir(task), want)
			}
		}
	}

	s := start(t, rt, "created", bundle(t, root, []string{"sleep", "30"}, nil))
	check("created", s.Pid, rt.defaultCgroup("created"))

	spec, err := LoadSpec(bundle(t, root, []string{"true"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rt.Prepare("prepared", spec.Linux.Namespaces, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	check("prepared", p.Pid(), rt.defaultCgroup("prepared"))

	sp, err := rt.PrepareSpare(IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	check("spare", sp.Pid(), sp.cgroup)
	if err := sp.Claim("claimed", spec.Linux.Namespaces); err != nil {
		t.Fatal(err)
	}
	check("claimed spare", sp.Pid(), rt.defaultCgroup("claimed"))
}

// inCgroup says whether the task whose /proc cgroup file is at path is in
// cgroup want on every hierarchy of host.
func inCgroup(host *cgroups.Host, path, want string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	at := map[string]string{} // controllers (v1) or "" (v2) to cgroup
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 {
			at[f[1]] = f[2]
		}
	}
	hiers := []string{""}
	if host.Version == cgroups.V1 {
		hiers = hiers[:0]
		for _, h := range host.Hierarchies {
			hiers = append(hiers, strings.Join(h.Controllers, ","))
		}
	}
	for _, h := range hiers {
		if at[h] != want {
			return fmt.Errorf("%s: in %q on hierarchy %q, want %s", path, at[h], h, want)
		}
	}
	return nil
}
