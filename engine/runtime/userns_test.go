package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// userns maps the container's ids 0-65535 to the host's 200000-265535.
const usernsBase = 200000

func withUserns(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
}

// chownRootfs gives the rootfs to the container's root, as an engine does
// for a user-namespaced container.
func chownRootfs(t *testing.T, bundle string) {
	t.Helper()
	// The path to the rootfs must be searchable by the unprivileged host
	// uid, as /var/lib/berth (0711) is.
	for d := bundle; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(filepath.Join(bundle, "rootfs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, usernsBase, usernsBase)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hostUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(statusFields(string(b))["Uid"])[0]
}

// TestUserNamespaceRootIsAnUnprivilegedHostUID: root in the container, an
// ordinary uid on the host.
func TestUserNamespaceRootIsAnUnprivilegedHostUID(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	// /printed says the script got through its output, so that the kill
	// below cannot cut it short on a busy machine.
	b := bundle(t, root, []string{"sh", "-c", "id -u; cat /proc/self/uid_map; touch /made-here; stat -c %u /made-here; touch /printed; sleep 30"}, withUserns)
	chownRootfs(t, b)
	s := start(t, rt, "userns", b)
	if got := hostUID(t, s.Pid); got != fmt.Sprint(usernsBase) {
		t.Fatalf("the container's root is host uid %s, want %d", got, usernsBase)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := os.Stat(filepath.Join(b, "rootfs", "printed"))
		return err
	})
	// A file the container's root made belongs to the unprivileged host uid.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(b, "rootfs", "made-here"), &st); err != nil || st.Uid != usernsBase {
		t.Fatalf("a file made by the container's root is host uid %d", st.Uid)
	}
	// exec: a sibling user namespace with the same mapping.
	res := execOut(t, rt, "userns", proc("sh", "-c", "id -u; cat /proc/self/uid_map; ls /proc/1/ >/dev/null && echo sees-pid-1"))
	if f := strings.Fields(res.stdout); len(f) != 5 || f[0] != "0" || f[2] != fmt.Sprint(usernsBase) || f[4] != "sees-pid-1" {
		t.Fatalf("exec in a user-namespaced container: %q (stderr %q)", res.stdout, res.stderr)
	}
	if err := rt.Kill(context.Background(), "userns", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	out := s.wait(t)
	f := strings.Fields(out.stdout)
	if len(f) != 5 || f[0] != "0" || f[1] != "0" || f[2] != fmt.Sprint(usernsBase) || f[4] != "0" {
		t.Fatalf("inside: %q (stderr %q), want uid 0 mapped to %d", out.stdout, out.stderr, usernsBase)
	}
}

// TestUserNamespaceRootCannotReachHostRootFiles: a root-owned host file
// bind-mounted into a user-namespaced container is not writable by the
// container's root (it is nobody's there).
func TestUserNamespaceRootCannotReachHostRootFiles(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	secret := filepath.Join(root, "root-only")
	if err := os.WriteFile(secret, []byte("host root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, root, []string{"sh", "-c", "cat /secret 2>&1 | grep -c denied; echo x >> /secret 2>/dev/null || echo write-refused; stat -c %u /secret"}, func(s *specs.Spec) {
		withUserns(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/secret", Type: "bind", Source: secret, Options: []string{"bind"}})
	})
	chownRootfs(t, b)
	res := run(t, rt, "userns-files", b)
	if res.stdout != "1\nwrite-refused\n65534\n" {
		t.Fatalf("got %q (stderr %q)", res.stdout, res.stderr)
	}
}
