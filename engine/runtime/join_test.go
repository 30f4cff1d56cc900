package runtime

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestJoinAnotherContainersNamespaces is network_mode container:, ipc
// container: and pid container: — the second container enters the first's
// namespaces by path and keeps its own mounts and hostname.
func TestJoinAnotherContainersNamespaces(t *testing.T) {
	t.Parallel()
	rt, root := newRuntime(t)
	first := bundle(t, root, []string{"sleep", "30"}, nil)
	a := start(t, rt, "first", first)
	ns := func(name string) string {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a.Pid, name))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	second := bundle(t, root, []string{"sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; hostname; ps -o comm | grep -c '^sleep'"}, func(s *specs.Spec) {
		s.Hostname = "second"
		for i, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.NetworkNamespace, specs.IPCNamespace, specs.PIDNamespace:
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", a.Pid, procName(n.Type))
			}
		}
	})
	res := run(t, rt, "second", second)
	want := fmt.Sprintf("%s\n%s\n%s\n", ns("net"), ns("ipc"), ns("pid"))
	if !strings.HasPrefix(res.stdout, want) {
		t.Fatalf("got %q, want it to start with the first container's net, ipc and pid namespaces %q (stderr %q)", res.stdout, want, res.stderr)
	}
	rest := strings.Split(strings.TrimPrefix(res.stdout, want), "\n")
	if rest[0] == ns("mnt") || rest[1] != "second" || rest[2] != "1" {
		t.Fatalf("got %q: want its own mount namespace, hostname second, and the first's sleep in ps", res.stdout)
	}
	if err := rt.Kill(context.Background(), "first", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	a.wait(t)
}

func TestJoiningAUserOrMountNamespaceIsNotSupported(t *testing.T) {
	t.Parallel()
	for _, typ := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.MountNamespace} {
		_, err := planNamespaces([]specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: typ, Path: "/proc/1/ns/" + procName(typ)}})
		if !errdefs.IsNotImplemented(err) && !errdefs.IsInvalidArgument(err) {
			t.Errorf("joining a %s namespace: %v", typ, err)
		}
	}
	if _, err := planNamespaces([]specs.LinuxNamespace{{Type: specs.PIDNamespace}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a spec without a mount namespace: %v", err)
	}
}
