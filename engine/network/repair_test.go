package network

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// The crash helper: the test binary re-executed with BERTH_NETTEST_CRASH set
// opens the state directory, arms a failpoint that kills the process with
// SIGKILL at the named step (between a kernel change and its record), and
// runs the operation that reaches it.
const (
	crashStepEnv = "BERTH_NETTEST_CRASH"
	crashDirEnv  = "BERTH_NETTEST_DIR"
)

func TestMain(m *testing.M) {
	if step := os.Getenv(crashStepEnv); step != "" {
		crashHelper(step, os.Getenv(crashDirEnv))
		fmt.Fprintf(os.Stderr, "crash helper: step %s was never reached\n", step)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func crashHelper(step, dir string) {
	m, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		os.Exit(3)
	}
	m.failpoint = func(s string) {
		if s == step {
			_ = unix.Kill(os.Getpid(), unix.SIGKILL)
			select {} // the signal is on its way
		}
	}
	switch step {
	case "network-after-bridge":
		_, err = m.Create(CreateOptions{Name: "half", IPAM: []IPAMConfig{{Subnet: "10.230.20.0/24"}}})
	case "sandbox-after-netns":
		_, err = m.CreateSandbox(SandboxOptions{Owner: "service half"})
	case "attach-after-veth":
		_, err = m.Attach("victim", "base", AttachOptions{})
	}
	fmt.Fprintln(os.Stderr, "crash helper:", err)
	os.Exit(4)
}

func crashAt(t *testing.T, dir, step string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashStepEnv+"="+step, crashDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("crash at %s: want death by SIGKILL, got %v: %s", step, err, out)
	}
}

func (e *env) ourLinks() []string {
	links, err := whole(netlink.LinkList)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, e.m.prefix) {
			out = append(out, l.Attrs().Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestCrashRepair kills a process between making a kernel object and
// recording it (a bridge, a namespace, a veth), removes recorded objects
// behind berth's back (a bridge, a veth, a namespace's mount, as a reboot
// would), and checks that the next Open deletes the first kind and makes
// again or forgets the second, leaving containers able to talk.
func TestCrashRepair(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	base := e.network("base", "10.230.21.0/24")
	keep := e.sandbox("service keep")
	keepEP := e.attach(keep, "base", AttachOptions{})
	peer := e.sandbox("service peer")
	peerEP := e.attach(peer, "base", AttachOptions{})
	if _, err := e.m.CreateSandbox(SandboxOptions{ID: "victim", Owner: "service victim"}); err != nil {
		t.Fatal(err)
	}
	gone := e.sandbox("service gone")
	goneEP := e.attach(gone, "base", AttachOptions{})
	wantLinks := []string{base.Bridge, keepEP.HostInterface, peerEP.HostInterface}
	slices.Sort(wantLinks)
	e.m.Close()

	// Each crash leaves one object without a record; the next Open
	// deletes it and says so.
	for _, c := range []struct{ step, left, repair string }{
		{"network-after-bridge", "bridge", "deleted bridge"},
		{"sandbox-after-netns", "namespace", "removed network namespace"},
		{"attach-after-veth", "veth", "deleted veth"},
	} {
		crashAt(t, e.dir, c.step)
		var left []string
		links, _ := whole(netlink.LinkList)
		for _, l := range links {
			name := l.Attrs().Name
			if strings.HasPrefix(name, e.m.prefix) && !slices.Contains(wantLinks, name) && name != goneEP.HostInterface {
				left = append(left, l.Type())
			}
		}
		ents, _ := os.ReadDir(e.m.netnsDir())
		if len(ents) == 5 {
			left = append(left, "namespace")
		}
		if !slices.Equal(left, []string{c.left}) {
			t.Fatalf("crash at %s left %v, want a %s", c.step, left, c.left)
		}
		e.open(Options{})
		if repairs := strings.Join(e.m.Repairs(), "\n"); !strings.Contains(repairs, c.repair) || !strings.Contains(repairs, "no record mentions") {
			t.Fatalf("after the crash at %s, Open repaired:\n%s\nwant %q", c.step, repairs, c.repair)
		}
		if got := e.ourLinks(); !slices.Equal(got, sortedCopy(append(slices.Clone(wantLinks), goneEP.HostInterface))) {
			t.Fatalf("links after repairing %s: %v", c.step, got)
		}
		if ents, _ := os.ReadDir(e.m.netnsDir()); len(ents) != 4 {
			t.Fatalf("namespaces after repairing %s: %v", c.step, ents)
		}
		e.m.Close()
	}
	// Behind berth's back: the bridge and keep's veth deleted; gone's
	// namespace unmounted, as after a reboot.
	for _, name := range []string{base.Bridge, keepEP.HostInterface} {
		if err := deleteLink(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Unmount(gone.Path, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}

	e.open(Options{})
	repairs := strings.Join(e.m.Repairs(), "\n")
	t.Logf("repairs:\n%s", repairs)
	for _, want := range []string{
		"network base: bridge " + base.Bridge + " was missing; made it again",
		"sandbox of service keep: endpoint eth0 on base (10.230.21.2/24) was missing; made it again",
		"sandbox of service gone: its network namespace is gone",
	} {
		if !strings.Contains(repairs, want) {
			t.Errorf("repairs do not say %q", want)
		}
	}
	if got := e.ourLinks(); !slices.Equal(got, wantLinks) {
		t.Fatalf("links after repair %v, want %v", got, wantLinks)
	}
	ents, _ := os.ReadDir(e.m.netnsDir())
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	slices.Sort(names)
	if want := []string{keep.ID, peer.ID, "victim"}; !slices.Equal(names, sortedCopy(want)) {
		t.Fatalf("namespaces after repair %v, want %v", names, sortedCopy(want))
	}
	if l := linksIn(t, filepath.Join(e.m.netnsDir(), "victim")); len(l) != 1 {
		t.Fatalf("the crashed attach left interfaces in the sandbox: %v", l)
	}
	if _, err := e.m.Sandbox(gone.ID); err == nil {
		t.Fatal("the sandbox whose namespace vanished is still recorded")
	}
	// keep's interface is back with its address: it reaches peer again,
	// and the address gone had is free for the next container.
	serve(t, peer.Path, "peer", 9000)
	mustAsk(t, keep.Path, "tcp", hostPort(peerEP.IP(), 9000), "peer "+keepEP.IP().String())
	if dev, gw := defaultRouteIn(t, keep.Path); dev != "eth0" || gw != base.Gateway.String() {
		t.Fatalf("keep's default route after repair: %q via %q", dev, gw)
	}
	next := e.sandbox("service next")
	if ep := e.attach(next, "base", AttachOptions{}); ep.IP() != goneEP.IP() {
		t.Fatalf("next address %s, want %s, freed with the forgotten sandbox", ep.IP(), goneEP.IP())
	}
	// The crashed attachment left nothing in the way of a new one.
	if ep, err := e.m.Attach("victim", "base", AttachOptions{}); err != nil || ep.Interface != "eth0" {
		t.Fatalf("attach after the crash: %v %v", ep.Interface, err)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestTeardownLeavesNothing: after the sandboxes and networks are removed
// no link, address, route, nftables table or rule, namespace or record of the
// state root remains.
func TestTeardownLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.network("t1", "10.230.16.0/24")
	e.network("t2", "10.230.17.0/24", func(o *CreateOptions) { o.Internal = true })
	a := e.sandbox("service a", PortMapping{ContainerPort: 80}, PortMapping{ContainerPort: 53, Protocol: "udp"})
	b := e.sandbox("service b")
	e.attach(a, "t1", AttachOptions{})
	e.attach(a, "t2", AttachOptions{})
	e.attach(b, "t2", AttachOptions{})
	if len(e.ourLinks()) != 5 {
		t.Fatalf("links %v", e.ourLinks())
	}
	for _, sb := range []Sandbox{a, b} {
		if err := e.m.DeleteSandbox(sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"t1", "t2"} {
		if err := e.m.Remove(n); err != nil {
			t.Fatal(err)
		}
	}
	if l := e.ourLinks(); len(l) != 0 {
		t.Fatalf("links left: %v", l)
	}
	conn, _ := nftables.New()
	if ok, err := e.m.tableExists(conn); ok || err != nil {
		t.Fatalf("nftables table %s left (%v)", e.m.table, err)
	}
	routes, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	for _, r := range routes {
		if r.Dst != nil && (strings.HasPrefix(r.Dst.IP.String(), "10.230.16.") || strings.HasPrefix(r.Dst.IP.String(), "10.230.17.")) {
			t.Fatalf("route left: %v", r)
		}
	}
	for _, d := range []string{e.m.netnsDir(), e.m.sandboxesDir(), e.m.networksDir()} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Fatalf("%s not empty: %v", d, ents)
		}
	}
	e.m.Close()
	e.m = nil
	if leaks := testutil.Leaks(e.root); len(leaks) != 0 {
		t.Fatalf("leaks: %v", leaks)
	}
}
