package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// capMask is the /proc/PID/status rendering of a set of capability names.
func capMask(t *testing.T, names []string) string {
	t.Helper()
	set, unknown := parseCaps(names)
	if len(unknown) > 0 {
		t.Fatalf("unknown capabilities %v", unknown)
	}
	return fmt.Sprintf("%016x", uint64(set[1])<<32|uint64(set[0]))
}

func statusFields(out string) map[string]string {
	m := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestDefaultCapabilities(t *testing.T) {
	t.Parallel()
	res := sh(t, "cat /proc/self/status", nil)
	st := statusFields(res.stdout)
	want := capMask(t, DefaultCapabilities())
	for _, k := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if st[k] != want {
			t.Errorf("%s = %s, want %s (Docker's default set)", k, st[k], want)
		}
	}
	for _, k := range []string{"CapInh", "CapAmb"} {
		if st[k] != "0000000000000000" {
			t.Errorf("%s = %s, want none", k, st[k])
		}
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs = %q, want 1", st["NoNewPrivs"])
	}
	if st["Seccomp"] != "2" {
		t.Errorf("Seccomp = %q, want 2 (filter)", st["Seccomp"])
	}
}

func TestMountIsDenied(t *testing.T) {
	t.Parallel()
	res := sh(t, "mkdir -p /mnt/x; mount -t tmpfs none /mnt/x && echo mounted; echo $?", nil)
	if strings.Contains(res.stdout, "mounted") || !strings.Contains(res.stderr, "denied") && !strings.Contains(res.stderr, "not permitted") {
		t.Fatalf("mount was not denied: stdout %q stderr %q", res.stdout, res.stderr)
	}
}

// TestDroppedCapabilityIsGone drops CAP_CHOWN and CAP_NET_RAW and checks
// both the sets and what the kernel then refuses.
func TestDroppedCapabilityIsGone(t *testing.T) {
	t.Parallel()
	var caps []string
	for _, c := range DefaultCapabilities() {
		if c != "CAP_CHOWN" && c != "CAP_NET_RAW" {
			caps = append(caps, c)
		}
	}
	script := "grep CapBnd /proc/self/status; touch /tmp/f; chown 1 /tmp/f 2>&1 || echo chown-refused; " +
		"ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 || echo ping-refused"
	res := sh(t, script, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	})
	if !strings.Contains(res.stdout, capMask(t, caps)) || !strings.Contains(res.stdout, "chown-refused") || !strings.Contains(res.stdout, "ping-refused") {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	// And with the defaults, both work: the test above can fail.
	res = sh(t, "touch /tmp/f; chown 1 /tmp/f && echo chown-ok; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok", nil)
	if res.stdout != "chown-ok\nping-ok\n" {
		t.Fatalf("with default caps: %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestAmbientCapabilitiesForANonRootUser(t *testing.T) {
	t.Parallel()
	caps := []string{"CAP_NET_BIND_SERVICE"}
	res := sh(t, "grep -E 'CapEff|CapAmb' /proc/self/status; id -u", func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps,
		}
	})
	st := statusFields(res.stdout)
	want := capMask(t, caps)
	if st["CapEff"] != want || st["CapAmb"] != want {
		t.Fatalf("got %q, want CapEff and CapAmb %s (stderr %q)", res.stdout, want, res.stderr)
	}
}

func TestSeccompRefusesUnshareAndKeyctl(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", "probe unshare; probe keyctl; probe write /tmp/ok-to-write"}, nil)
	addProbe(t, b)
	if err := os.WriteFile(b+"/rootfs/tmp/ok-to-write", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, rt, "seccomp", b)
	if res.stdout != "operation not permitted\noperation not permitted\nok\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	// The same probes without the profile (and with CAP_SYS_ADMIN) pass:
	// the refusals above are seccomp's.
	b = bundle(t, root, []string{"sh", "-c", "probe unshare; probe keyctl"}, func(s *specs.Spec) {
		s.Linux.Seccomp = nil
		caps := append(DefaultCapabilities(), "CAP_SYS_ADMIN")
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	})
	addProbe(t, b)
	res = run(t, rt, "unconfined", b)
	if res.stdout != "ok\nok\n" {
		t.Fatalf("unconfined: got %q (stderr %q)", res.stdout, res.stderr)
	}
}

func TestMaskedPathsAreUnreadable(t *testing.T) {
	t.Parallel()
	// /proc/keys and /proc/timer_list exist on every kernel berth supports;
	// /sys/firmware is a directory.
	res := sh(t, "wc -c < /proc/keys; wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; "+
		"ls /proc/kcore >/dev/null 2>&1 && wc -c < /proc/kcore || echo 0", nil)
	if res.stdout != "0\n0\n0\n0\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
	host, err := os.ReadFile("/proc/timer_list")
	if err != nil || len(host) == 0 {
		t.Fatalf("the host's /proc/timer_list is empty too: the test proves nothing (%v)", err)
	}
}

func TestReadonlyPaths(t *testing.T) {
	t.Parallel()
	res := sh(t, "echo 1 > /proc/sys/vm/drop_caches; echo 1 > /proc/irq/default_smp_affinity; true", nil)
	if n := strings.Count(res.stderr, "Read-only file system"); n != 2 {
		t.Fatalf("got stderr %q, want two read-only refusals", res.stderr)
	}
}

// TestEscapes tries the ways out of a default container: host processes,
// the host's files, kernel memory, raw devices, host network interfaces.
func TestEscapes(t *testing.T) {
	t.Parallel()
	script := strings.Join([]string{
		// Every process visible is the container's own (pid namespace).
		"echo /proc/[0-9]*",
		// /proc/1/root is the container's root, not the host's.
		"ls /proc/1/root/ | grep -c host-marker",
		// No host filesystem is mounted.
		"grep -c ' /host' /proc/self/mountinfo",
		// A block device node made with CAP_MKNOD is refused by the device cgroup.
		"mknod /tmp/vda b 254 0 && (head -c 1 /tmp/vda >/dev/null 2>&1 && echo read-disk || echo disk-refused)",
		"mknod /tmp/mem c 1 1 && (head -c 1 /tmp/mem >/dev/null 2>&1 && echo read-mem || echo mem-refused)",
		// Kernel memory.
		"head -c 1 /proc/kcore 2>/dev/null | wc -c",
		// Only lo.
		"ls /sys/class/net | tr '\\n' ' '; echo",
		// The kernel's log and modules.
		"dmesg >/dev/null 2>&1 && echo dmesg-read || echo dmesg-refused",
		"probe write /proc/sys/kernel/core_pattern",
	}, "; ")
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", script}, nil)
	addProbe(t, b)
	if err := os.WriteFile("/host-marker-"+strconv.Itoa(os.Getpid()), nil, 0o600); err == nil {
		defer os.Remove("/host-marker-" + strconv.Itoa(os.Getpid()))
	}
	res := run(t, rt, "escape", b)
	want := "/proc/1\n0\n0\ndisk-refused\nmem-refused\n0\nlo \ndmesg-refused\nopen /proc/sys/kernel/core_pattern: read-only file system\n"
	if res.stdout != want {
		t.Fatalf("got\n%s\nwant\n%s\n(stderr %q)", res.stdout, want, res.stderr)
	}
}

// TestCVE2019_5736 is the runc escape: a process holding a handle on the
// setup stage's /proc/PID/exe must not be able to write berth's binary.
// From the host (as root, with every capability) the handle is taken while
// the setup stage waits; after start the handle still points at the binary
// the setup stage ran from, and opening it for writing must fail.
func TestCVE2019_5736(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	s := create(t, rt, "cve", b, nil)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/exe", s.Pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open the setup stage's exe: %v", err)
	}
	defer unix.Close(fd)
	if err := rt.Start(context.Background(), "cve"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.Pid))
		if !strings.HasSuffix(exe, "/bin/busybox") {
			return fmt.Errorf("exe is still %s", exe)
		}
		return nil
	})
	w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(w)
		t.Fatal("the binary the setup stage ran from opened for writing")
	}
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("open for writing: %v, want EROFS (a read-only view, not the host's file)", err)
	}
	after, _ := os.ReadFile(self)
	if string(after) != string(before) {
		t.Fatal("the test binary changed")
	}
}

// TestContainerCannotOpenTheSetupStageBinary tries the same from inside:
// a process exec'd into a created container (whose pid 1 is still the
// setup stage) opens /proc/1/exe for writing.
func TestContainerCannotOpenTheSetupStageBinary(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sleep", "30"}, nil)
	addProbe(t, b)
	create(t, rt, "cve-inside", b, nil)
	res := execOut(t, rt, "cve-inside", proc("probe", "write", "/proc/1/exe"))
	if strings.TrimSpace(res.stdout) == "ok" || res.stdout == "" {
		t.Fatalf("the container opened the setup stage's binary for writing: %q (stderr %q)", res.stdout, res.stderr)
	}
	t.Logf("open /proc/1/exe for writing: %s", strings.TrimSpace(res.stdout))
}
