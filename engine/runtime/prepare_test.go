package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// runPrepared creates a container from a stage started by Prepare with
// the given namespaces, and runs it to its end. Its root filesystem is
// mounted after the stage started, as the engine mounts it, on a host
// whose mounts do not propagate.
func runPrepared(t *testing.T, rt *Runtime, id, bundle string, namespaces []specs.LinuxNamespace) (result, bool) {
	t.Helper()
	out, errOut := newCapture(t), newCapture(t)
	p, err := rt.Prepare(id, namespaces, IO{Stdout: out.w, Stderr: errOut.w})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return runStage(t, rt, id, bundle, p, out, errOut)
}

// runStage creates container id from stage p, whose stdio are out and
// errOut, as runPrepared does.
func runStage(t *testing.T, rt *Runtime, id, bundle string, p *Prepared, out, errOut *capture) (result, bool) {
	t.Helper()
	stage := p.Pid()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Rename(rootfs, rootfs+".dir"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(rootfs+".dir", rootfs, "", unix.MS_BIND|unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
	var pid int
	res := runCreated(t, rt, id, out, errOut, func() (Process, error) {
		proc, err := rt.CreatePrepared(context.Background(), id, bundle, p)
		pid = proc.Pid
		return proc, err
	})
	return res, pid == stage
}

// TestPreparedStageBecomesTheContainer: a stage started before the spec
// exists becomes the container's process, in the spec's namespaces,
// cgroup and root filesystem, and with a joined network namespace that
// was only named at create.
func TestPreparedStageBecomesTheContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	script := "hostname; readlink /proc/self/ns/net; echo pid $$; cat /proc/self/cgroup | grep -c :/$; ls /proc/1/root/etc/passwd"

	// Its own network namespace, as network_mode none.
	b := bundle(t, root, []string{"sh", "-c", script}, nil)
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	res, used := runPrepared(t, rt, "own-net", b, spec.Linux.Namespaces)
	if !used {
		t.Fatal("the prepared stage was not used for a spec with the namespaces it was prepared with")
	}
	lines := strings.Split(res.stdout, "\n")
	host, _ := os.Readlink("/proc/self/ns/net")
	if res.code() != 0 || len(lines) < 5 || lines[0] != "box" || lines[1] == host || lines[2] != "pid 1" || lines[4] != "/proc/1/root/etc/passwd" {
		t.Fatalf("got %q (stderr %q, code %d): want hostname box, a network namespace of its own, pid 1, its root", res.stdout, res.stderr, res.code())
	}

	// A network namespace joined by path, as a bridge network's sandbox.
	first := bundle(t, root, []string{"sleep", "30"}, nil)
	a := start(t, rt, "first", first)
	netPath := fmt.Sprintf("/proc/%d/ns/net", a.Pid)
	want, err := os.Readlink(netPath)
	if err != nil {
		t.Fatal(err)
	}
	join := func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = netPath
			}
		}
	}
	b = bundle(t, root, []string{"sh", "-c", script + "; ip -o link show lo | grep -c UP"}, join)
	if spec, err = LoadSpec(b); err != nil {
		t.Fatal(err)
	}
	shape := append([]specs.LinuxNamespace(nil), spec.Linux.Namespaces...)
	for i, n := range shape {
		if n.Type == specs.NetworkNamespace {
			shape[i].Path = "to be named at create"
		}
	}
	res, used = runPrepared(t, rt, "joined-net", b, shape)
	if !used {
		t.Fatal("the prepared stage was not used for a spec joining the network namespace it was prepared to join")
	}
	if lines = strings.Split(res.stdout, "\n"); res.code() != 0 || len(lines) < 2 || lines[1] != want {
		t.Fatalf("got %q (stderr %q): want the first container's network namespace %s", res.stdout, res.stderr, want)
	}
	if err := rt.Kill(context.Background(), "first", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	a.wait(t)
}

// TestPreparedStageThatDoesNotFitIsReplaced: prepared for other
// namespaces than the spec's, the stage is ended and the container
// created as Create would, with the same stdio.
func TestPreparedStageThatDoesNotFitIsReplaced(t *testing.T) {
	t.Parallel()
	rt, root, log := newRuntimeLog(t)
	b := bundle(t, root, []string{"sh", "-c", "echo hello"}, nil)
	res, used := runPrepared(t, rt, "replaced", b, []specs.LinuxNamespace{{Type: specs.MountNamespace}})
	if used {
		t.Fatal("a stage prepared with a mount namespace only became a container whose spec has five")
	}
	if res.code() != 0 || res.stdout != "hello\n" {
		t.Fatalf("got %q (stderr %q, code %d), want hello", res.stdout, res.stderr, res.code())
	}
	if !strings.Contains(log.String(), "prepared setup stage not used") {
		t.Fatalf("log %q does not say why the prepared stage was not used", log.String())
	}
}

// TestPreparedStageClosedUnused: a stage prepared and never used ends,
// reaped, when closed; joins it cannot make are refused up front.
func TestPreparedStageClosedUnused(t *testing.T) {
	t.Parallel()
	rt, _ := newRuntime(t)
	p, err := rt.Prepare("unused", []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}}, IO{})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || !strings.Contains(string(b), "/unused\n") {
		t.Fatalf("the prepared stage's cgroups %q (%v): want the container's, .../unused", b, err)
	}
	p.Close()
	p.Close()
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Fatalf("the closed stage, pid %d, is still there: kill 0 = %v", pid, err)
	}
	// (The state root's leak check finds a cgroup left behind.)
	_, err = rt.Prepare("unused", []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}}, IO{})
	if !errdefs.IsNotImplemented(err) {
		t.Fatalf("preparing a stage that joins a pid namespace: %v, want not implemented", err)
	}
}

// TestSpareStageBecomesTheContainer: a spare stage, started at idle
// priority in a pid namespace of its own before any container exists,
// becomes the container that claims it: in the spec's other namespaces
// (made at bootstrap), its cgroup, at normal priority. A spec it cannot
// serve leaves it a spare; one that died unclaimed leaves no cgroup.
func TestSpareStageBecomesTheContainer(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	out, errOut := newCapture(t), newCapture(t)
	p, err := rt.PrepareSpare(IO{Stdout: out.w, Stderr: errOut.w})
	if err != nil {
		t.Fatal(err)
	}
	if policy(t, p.Pid()) != unix.SCHED_IDLE {
		t.Fatalf("the spare stage's policy is %d, want SCHED_IDLE", policy(t, p.Pid()))
	}
	hostShared := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if err := p.Claim("host-pid", hostShared); !errdefs.IsNotImplemented(err) {
		t.Fatalf("claim for a container in the host's pid namespace: %v, want not implemented", err)
	}
	script := "hostname; for ns in net uts ipc; do readlink /proc/self/ns/$ns; done; echo pid $$; grep -c /claimed$ /proc/self/cgroup; grep ^policy /proc/self/sched"
	b := bundle(t, root, []string{"sh", "-c", script}, nil)
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Claim("claimed", spec.Linux.Namespaces); err != nil {
		t.Fatal(err)
	}
	if policy(t, p.Pid()) != unix.SCHED_NORMAL {
		t.Fatalf("the claimed stage's policy is %d, want SCHED_NORMAL", policy(t, p.Pid()))
	}
	res, used := runStage(t, rt, "claimed", b, p, out, errOut)
	if !used {
		t.Fatal("the claimed spare stage did not become the container")
	}
	lines := strings.Split(res.stdout, "\n")
	if res.code() != 0 || len(lines) < 7 || lines[0] != "box" || lines[4] != "pid 1" || lines[5] == "0" || !strings.HasSuffix(lines[6], " 0") {
		t.Fatalf("got %q (stderr %q, code %d): want hostname box, pid 1, the container's cgroup, policy 0", res.stdout, res.stderr, res.code())
	}
	for i, ns := range []string{"net", "uts", "ipc"} {
		if host, _ := os.Readlink("/proc/self/ns/" + ns); lines[1+i] == host {
			t.Fatalf("the container's %s namespace is the host's (%s)", ns, host)
		}
	}

	// Unclaimed and killed (with the monitor that started it), it leaves its
	// cgroup, which RemoveSpareCgroups removes.
	dead, err := rt.PrepareSpare(IO{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.Kill(dead.Pid(), unix.SIGKILL)
	dead.c.reap()
	dead.c = nil
	rt.RemoveSpareCgroups()
	left, _ := filepath.Glob("/sys/fs/cgroup/*/" + rootid.CgroupParent(root) + "/spare-*")
	v2, _ := filepath.Glob("/sys/fs/cgroup/" + rootid.CgroupParent(root) + "/spare-*")
	if left = append(left, v2...); len(left) > 0 {
		t.Fatalf("cgroups of a dead spare stage left: %v", left)
	}
}

// TestSpareStageOnCgroupV2 claims a spare stage on a v2 host: cloned
// into a spare cgroup, it joins the container's at the claim (v2 renames
// no cgroup) and runs there, and the spare cgroup is gone. On a hybrid
// host the runtime is pointed at the unified hierarchy, which has no
// controllers there: the default spec asks none.
func TestSpareStageOnCgroupV2(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	rt.host = &cgroups.Host{Version: cgroups.V2, Unified: testutil.UnifiedMount(t)}
	parent := filepath.Join(rt.host.Unified, rootid.CgroupParent(root))
	t.Cleanup(func() { // after a failure
		rt.host.RemoveChildrenIf(rootid.CgroupParent(root), func(string) bool { return true })
		rt.host.RemoveIfEmpty(rootid.CgroupParent(root))
	})
	out, errOut := newCapture(t), newCapture(t)
	p, err := rt.PrepareSpare(IO{Stdout: out.w, Stderr: errOut.w})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	spare := p.cgroup
	if got := testutil.UnifiedCgroupOf(t, p.Pid()); got != spare {
		t.Fatalf("the spare stage is in cgroup %q, want %q", got, spare)
	}
	b := bundle(t, root, []string{"sh", "-c", "echo ran"}, nil)
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Claim("v2claimed", spec.Linux.Namespaces); err != nil {
		t.Fatal(err)
	}
	if got, want := testutil.UnifiedCgroupOf(t, p.Pid()), rt.defaultCgroup("v2claimed"); got != want {
		t.Fatalf("the claimed stage is in cgroup %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(rt.host.Unified, spare)); !os.IsNotExist(err) {
		t.Fatalf("the spare cgroup is still there: %v", err)
	}
	res, used := runStage(t, rt, "v2claimed", b, p, out, errOut)
	if !used || res.code() != 0 || res.stdout != "ran\n" {
		t.Fatalf("used %v, exit %d, stdout %q, stderr %q", used, res.code(), res.stdout, res.stderr)
	}
	if err := rt.Delete(context.Background(), "v2claimed", DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parent); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(parent)
		t.Fatalf("the cgroups' parent is still there after the delete: %v %v", err, entries)
	}
}

// policy is the scheduling policy of pid.
func policy(t *testing.T, pid int) uint32 {
	t.Helper()
	attr, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	return attr.Policy
}

// TestWarmBootstrapDecodes: the warm-up decodes every field it names into
// the bootstrap's types, so a renamed field shows here.
func TestWarmBootstrapDecodes(t *testing.T) {
	d := json.NewDecoder(strings.NewReader(warmBootstrap))
	d.DisallowUnknownFields()
	var m message
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Bootstrap == nil || m.Bootstrap.Spec.Linux.Resources.Memory == nil || len(m.Bootstrap.Cgroups) != 1 {
		t.Fatalf("decoded %+v: want a bootstrap with a spec, resources and cgroups", m)
	}
}
