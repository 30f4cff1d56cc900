package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestEchoHi(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo hi", nil)
	if res.stdout != "hi\n" || res.code() != 0 {
		t.Fatalf("got stdout %q stderr %q status %d", res.stdout, res.stderr, res.code())
	}
}

func TestExitStatusPassesThrough(t *testing.T) {
	t.Parallel()
	if res := sh(t, "exit 7", nil); res.code() != 7 {
		t.Fatalf("status %d, want 7 (stderr %q)", res.code(), res.stderr)
	}
}

func TestProcessIsPidOneOfItsOwnPidNamespace(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo $$; ps -o pid,comm; true", nil)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if lines[0] != "1" {
		t.Fatalf("$$ = %q, want 1 (output %q, stderr %q)", lines[0], res.stdout, res.stderr)
	}
	// A header, the shell and ps: no host process is visible.
	if len(lines) != 4 || !strings.HasSuffix(lines[2], " sh") || !strings.HasSuffix(lines[3], " ps") {
		t.Fatalf("ps lists more than the shell and itself:\n%s", res.stdout)
	}
}

func TestOwnHostnameAndDomainname(t *testing.T) {
	t.Parallel()
	res := sh(t, "hostname; cat /proc/sys/kernel/domainname", func(s *specs.Spec) {
		s.Hostname, s.Domainname = "web-1", "example.test"
	})
	if res.stdout != "web-1\nexample.test\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	host, _ := os.Hostname()
	if host == "web-1" {
		t.Fatal("the host's hostname changed")
	}
}

// TestNamespacesAreTheContainersOwn compares each namespace of the
// container's process with the test's own.
func TestNamespacesAreTheContainersOwn(t *testing.T) {
	t.Parallel()
	names := []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"}
	script := ""
	for _, n := range names {
		script += "readlink /proc/self/ns/" + n + "; "
	}
	res := sh(t, script, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	})
	got := strings.Fields(res.stdout)
	if len(got) != len(names) {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	for i, n := range names {
		host, err := os.Readlink("/proc/self/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] == host {
			t.Errorf("%s namespace is the host's (%s)", n, host)
		}
	}
}

func TestOnlyLoopbackInAFreshNetworkNamespace(t *testing.T) {
	t.Parallel()
	res := sh(t, "ls /sys/class/net; ip -o link | cut -d: -f2; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok", nil)
	want := "lo\n lo\nping-ok\n"
	if res.stdout != want {
		t.Fatalf("got %q, want %q (stderr %q)", res.stdout, want, res.stderr)
	}
}

func TestOwnMountTable(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "cat /proc/self/mountinfo; ls /"}, nil)
	// A file beside the rootfs, on the host, must not be reachable.
	if err := os.WriteFile(filepath.Join(b, "host-secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, rt, "mounts", b)
	// Mount points (the fifth field) are the container's paths; the fourth,
	// the root of a bind mount inside its filesystem, names the host's.
	points := map[string]bool{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 5 {
			points[f[4]] = true
			if strings.Contains(f[4], root) {
				t.Errorf("a host path is a mount point in the container: %s", line)
			}
		}
	}
	if strings.Contains(res.stdout, "host-secret") {
		t.Fatalf("the container sees the bundle:\n%s", res.stdout)
	}
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 5 && strings.HasPrefix(f[4], "/sys/fs/cgroup") && !strings.HasPrefix(f[5], "ro,") {
			t.Errorf("a cgroup mount is writable in the container: %s", line)
		}
	}
	for _, m := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/sys/fs/cgroup/memory"} {
		if !points[m] {
			t.Errorf("no %s mount in the container:\n%s", m, res.stdout)
		}
	}
}

func TestEnvCwdUserAndGroups(t *testing.T) {
	t.Parallel()
	res := sh(t, `echo "$FOO"; pwd; id -u; id -g; id -G; echo "$HOME"; umask`, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Cwd = "/tmp"
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}}
	})
	want := "bar baz\n/tmp\n1000\n1001\n1001 10 20\n/\n0022\n"
	if res.stdout != want {
		t.Fatalf("got %q, want %q (stderr %q)", res.stdout, want, res.stderr)
	}
}

func TestHomeFromPasswd(t *testing.T) {
	t.Parallel()
	if res := sh(t, `echo "$HOME"`, nil); res.stdout != "/root\n" {
		t.Fatalf("HOME = %q, want /root", res.stdout)
	}
}

func TestRlimits(t *testing.T) {
	t.Parallel()
	res := sh(t, "ulimit -n; ulimit -Hn; ulimit -s", func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200},
			{Type: "RLIMIT_STACK", Soft: 4096 * 1024, Hard: 4096 * 1024},
		}
	})
	if res.stdout != "100\n200\n4096\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

// TestRlimitAboveHardLimitIsClampedWithAWarning guards the rule for hosts
// where root lacks CAP_SYS_RESOURCE: never fail, clamp and say so.
func TestRlimitAboveHardLimitIsClampedWithAWarning(t *testing.T) {
	t.Parallel()
	rt, root, log := newRuntimeLog(t)
	var cur [2]uint64
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				f := strings.Fields(l)
				cur[0], _ = strconv.ParseUint(f[3], 10, 64)
				cur[1], _ = strconv.ParseUint(f[4], 10, 64)
			}
		}
	}
	if hasCapSysResource() {
		t.Skip("this process holds CAP_SYS_RESOURCE: nothing to clamp (this would also skip under CI)")
	}
	want := cur[1] * 4
	b := bundle(t, root, []string{"sh", "-c", "ulimit -Hn"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: want}}
	})
	res := run(t, rt, "clamp", b)
	if res.code() != 0 || strings.TrimSpace(res.stdout) != strconv.FormatUint(cur[1], 10) {
		t.Fatalf("hard limit %q, want the clamped %d (status %d, stderr %q)", res.stdout, cur[1], res.code(), res.stderr)
	}
	if !strings.Contains(log.String(), "clamped") {
		t.Fatalf("no warning about the clamp in the log:\n%s", log.String())
	}
}

func TestOOMScoreAdj(t *testing.T) {
	t.Parallel()
	res := sh(t, "cat /proc/self/oom_score_adj", func(s *specs.Spec) {
		v := 500
		s.Process.OOMScoreAdj = &v
	})
	if res.stdout != "500\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestSysctls(t *testing.T) {
	t.Parallel()
	res := sh(t, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni", func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
	})
	if res.stdout != "1\n1234\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/shmmni")
	if strings.TrimSpace(string(host)) == "1234" {
		t.Fatal("the host's kernel.shmmni changed")
	}
}

func TestSysctlThatIsNotNamespacedIsRefused(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"true"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"kernel.pid_max": "4096"}
	})
	_, err := rt.Create(context.Background(), "sysctl", b, IO{})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "kernel.pid_max") {
		t.Fatalf("got %v, want an invalid argument naming kernel.pid_max", err)
	}
}

func TestMounts(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	src := filepath.Join(root, "shared")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "single")
	if err := os.WriteFile(file, []byte("one file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.Join([]string{
		"cat /data/hello", "echo written > /data/out",
		"cat /ro/hello", "touch /ro/x 2>/dev/null || echo ro-refused",
		"cat /etc/single",
		"df -k /scratch | tail -1 | awk '{print $2}'", "stat -c %a /scratch",
		"stat -c %a /dev/shm", "ls -d /dev/mqueue",
		"grep -c ' /deep/new/dir ' /proc/self/mountinfo",
	}, "; ")
	b := bundle(t, root, []string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
			specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			specs.Mount{Destination: "/etc/single", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
			specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=2m", "mode=700"}},
			specs.Mount{Destination: "/deep/new/dir", Type: "tmpfs", Source: "tmpfs"},
		)
	})
	res := run(t, rt, "mounts", b)
	want := "from host\nfrom host\nro-refused\none file\n2048\n700\n1777\n/dev/mqueue\n1\n"
	if res.stdout != want {
		t.Fatalf("got %q, want %q (stderr %q)", res.stdout, want, res.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(src, "out")); err != nil || string(b) != "written\n" {
		t.Fatalf("the rw bind mount did not reach the host: %q %v", b, err)
	}
}

// TestSymlinkedMountTargetStaysInsideTheRootfs guards against an image
// whose mount point is a symlink out of the rootfs: the mount must land
// inside it.
func TestSymlinkedMountTargetStaysInsideTheRootfs(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	outside := filepath.Join(root, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, root, []string{"sh", "-c", "ls /escape/"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/escape", Type: "tmpfs", Source: "tmpfs"})
	})
	if err := os.Symlink(outside, filepath.Join(b, "rootfs", "escape")); err != nil {
		t.Fatal(err)
	}
	res := run(t, rt, "symlink", b)
	if res.code() != 0 {
		t.Fatalf("status %d, stderr %q", res.code(), res.stderr)
	}
	// Had the mount followed the link, the tmpfs would sit on the host dir
	// (and the leak check would find it); the host dir stays a plain dir.
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("something landed outside the rootfs: %v", entries)
	}
}

func TestDefaultDevicesAndSpecDevices(t *testing.T) {
	t.Parallel()
	res := sh(t, "for d in null zero full random urandom tty fuse; do stat -c '%n %t:%T %a' /dev/$d; done; "+
		"readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && head -c 3 /dev/zero | wc -c", func(s *specs.Spec) {
		mode := os.FileMode(0o600)
		major, minor := int64(10), int64(229)
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: major, Minor: minor, FileMode: &mode})
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
	})
	want := "/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n" +
		"/dev/urandom 1:9 666\n/dev/tty 5:0 666\n/dev/fuse a:e5 600\n/proc/self/fd\npts/ptmx\n3\n"
	if res.stdout != want {
		t.Fatalf("got %q\nwant %q (stderr %q)", res.stdout, want, res.stderr)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	t.Parallel()
	res := sh(t, "touch /newfile 2>&1 | grep -c 'Read-only'; touch /dev/shm/ok && echo shm-writable", func(s *specs.Spec) {
		s.Root.Readonly = true
	})
	if res.stdout != "1\nshm-writable\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestStartTwiceIsAnIllegalTransition(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	s := start(t, rt, "twice", b)
	err := rt.Start(context.Background(), "twice")
	var te *TransitionError
	if !errdefs.IsFailedPrecondition(err) || !errors.As(err, &te) || te.From != Running {
		t.Fatalf("second start: %v, want a failed precondition from running", err)
	}
	if err := rt.Delete(context.Background(), "twice", DeleteOptions{}); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete of a running container without force: %v", err)
	}
	if err := rt.Kill(context.Background(), "twice", 9, false); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	st, err := rt.State(context.Background(), "twice")
	if err != nil || st.Status != Stopped || st.Pid != 0 {
		t.Fatalf("after SIGKILL: %+v %v", st, err)
	}
	if err := rt.Start(context.Background(), "twice"); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("start of a stopped container: %v", err)
	}
	if err := rt.Delete(context.Background(), "twice", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Delete(context.Background(), "twice", DeleteOptions{}); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
	if _, err := rt.State(context.Background(), "twice"); !errdefs.IsNotFound(err) {
		t.Fatalf("state after delete: %v", err)
	}
}

func TestStatesThroughTheLifecycle(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.example/role": "test"}
	})
	ctx := context.Background()
	s := create(t, rt, "life", b, nil)
	status := func(want Status) State {
		t.Helper()
		st, err := rt.State(ctx, "life")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != want {
			t.Fatalf("status %s, want %s", st.Status, want)
		}
		return st
	}
	st := status(Created)
	if st.Pid != s.Pid || st.Bundle != b || st.Annotations["org.example/role"] != "test" {
		t.Fatalf("state %+v", st)
	}
	if err := rt.Start(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	status(Running)
	if err := rt.Pause(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	status(Paused)
	if _, err := rt.Exec(ctx, "life", proc("true"), IO{}); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("exec in a paused container: %v", err)
	}
	if err := rt.Resume(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	status(Running)
	list, err := rt.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "life" {
		t.Fatalf("list: %+v %v", list, err)
	}
	// SIGKILL: sleep, as pid 1 of its namespace, ignores a SIGTERM it has no handler for.
	if err := rt.Kill(ctx, "life", 9, false); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
	status(Stopped)
}

// TestStateSeesAReusedPid guards against pid reuse: a process with the
// recorded pid but another start time is not the container's.
func TestStateSeesAReusedPid(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	start(t, rt, "reuse", b)
	rec, err := rt.load("reuse")
	if err != nil {
		t.Fatal(err)
	}
	if rt.status(rec) != Running {
		t.Fatal("not running")
	}
	rec.PidStart++
	if got := rt.status(rec); got != Stopped {
		t.Fatalf("a pid with another start time reads as %s, want stopped", got)
	}
}

func TestCreateRefusesADuplicateID(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	create(t, rt, "dup", b, nil)
	if _, err := rt.Create(context.Background(), "dup", b, IO{}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := rt.Create(context.Background(), "../evil", b, IO{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("create ../evil: %v", err)
	}
}

func TestSetupErrorNamesTheStep(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"no-such-program"}, nil)
	_, err := rt.Create(context.Background(), "missing", b, IO{})
	var se *SetupError
	if !errors.As(err, &se) || se.Step != "exec" || !strings.Contains(se.Err, "not found") {
		t.Fatalf("got %v, want a setup error at exec saying not found", err)
	}
	b = bundle(t, root, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/dir"})
	})
	_, err = rt.Create(context.Background(), "badmount", b, IO{})
	if !errors.As(err, &se) || se.Step != "mount /x" {
		t.Fatalf("got %v, want a setup error at mount /x", err)
	}
	if _, err := rt.State(context.Background(), "badmount"); !errdefs.IsNotFound(err) {
		t.Fatalf("a failed create left state: %v", err)
	}
}

// TestMountPropagation: a bind mount marked rslave sees a mount made later
// on the host under its source; one marked rprivate does not.
func TestMountPropagation(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	src := filepath.Join(root, "propagated")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The source must be a shared mount for anything to propagate from it.
	if err := unix.Mount(src, src, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	// The container gives up after 10 s, so that a broken propagation fails
	// the test rather than hanging it.
	script := "i=0; while [ ! -e /slave/sub/ready ] && [ $i -lt 1000 ]; do usleep 10000; i=$((i+1)); done; " +
		"[ -e /slave/sub/ready ] && echo slave-sees; ls /private/sub/ready 2>/dev/null || echo private-does-not"
	b := bundle(t, root, []string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/slave", Type: "bind", Source: src, Options: []string{"rbind", "rslave"}},
			specs.Mount{Destination: "/private", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}},
		)
	})
	s := start(t, rt, "propagation", b)
	sub := filepath.Join(src, "sub")
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := s.wait(t)
	if res.stdout != "slave-sees\nprivate-does-not\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}
