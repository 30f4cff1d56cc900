package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// env is one test's state root and manager. Its cleanup deletes every
// sandbox and network left, then closes the manager, before StateRoot's leak
// check runs.
type env struct {
	t    *testing.T
	root string
	dir  string
	m    *Manager
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	e := &env{t: t, root: root, dir: filepath.Join(root, "network")}
	e.open(opts)
	t.Cleanup(func() { e.teardown() })
	return e
}

func (e *env) open(opts Options) {
	e.t.Helper()
	m, err := Open(e.dir, opts)
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.m = m
}

func (e *env) teardown() {
	if e.m == nil {
		return
	}
	for _, sb := range e.m.Sandboxes() {
		if err := e.m.DeleteSandbox(sb.ID); err != nil {
			e.t.Errorf("teardown: %v", err)
		}
	}
	for _, n := range e.m.List(nil) {
		if err := e.m.Remove(n.ID); err != nil {
			e.t.Errorf("teardown: %v", err)
		}
	}
	e.m.Close()
	e.m = nil
}

func (e *env) network(name, subnet string, mod ...func(*CreateOptions)) Network {
	e.t.Helper()
	opts := CreateOptions{Name: name}
	if subnet != "" {
		opts.IPAM = []IPAMConfig{{Subnet: subnet}}
	}
	for _, f := range mod {
		f(&opts)
	}
	n, err := e.m.Create(opts)
	if err != nil {
		e.t.Fatalf("create network %s: %v", name, err)
	}
	return n
}

func (e *env) sandbox(owner string, ports ...PortMapping) Sandbox {
	e.t.Helper()
	sb, err := e.m.CreateSandbox(SandboxOptions{Owner: owner, Ports: ports})
	if err != nil {
		e.t.Fatalf("create sandbox %s: %v", owner, err)
	}
	return sb
}

func (e *env) attach(sb Sandbox, network string, opts AttachOptions) Endpoint {
	e.t.Helper()
	ep, err := e.m.Attach(sb.ID, network, opts)
	if err != nil {
		e.t.Fatalf("attach %s to %s: %v", sb.Owner, network, err)
	}
	return ep
}

// testLink is the name of a link the test itself makes: "t", the root's
// identity and a suffix, outside the prefix Open cleans up.
func (e *env) testLink(suffix string) string { return "t" + rootid.Of(e.root) + suffix }

// inNS runs fn on a thread inside the namespace at path. Sockets fn opens
// belong to that namespace for their whole life, whichever thread later
// uses them. The thread is never returned to the Go runtime.
func inNS(t testing.TB, path string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("enter %s: %v", path, err)
	}
}

// serve starts, inside the namespace at path (or on the host when path is
// empty), a TCP server and a UDP server on port (of on[0], else of every
// address) that answer every connection or datagram with "NAME FROM", FROM
// being the peer address they see.
func serve(t testing.TB, path, name string, port uint16, on ...netip.Addr) {
	t.Helper()
	var l net.Listener
	var pc net.PacketConn
	var errT, errU error
	listen := func() {
		addr := fmt.Sprintf("0.0.0.0:%d", port)
		if len(on) > 0 {
			addr = netip.AddrPortFrom(on[0], port).String()
		}
		l, errT = net.Listen("tcp4", addr)
		pc, errU = net.ListenPacket("udp4", addr)
	}
	if path == "" {
		listen()
	} else {
		inNS(t, path, listen)
	}
	if errT != nil || errU != nil {
		t.Fatalf("listen in %s: %v %v", name, errT, errU)
	}
	t.Cleanup(func() { l.Close(); pc.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, from.(*net.UDPAddr).IP)), from)
		}
	}()
}

// ask connects from the namespace at path (the host when empty) to addr
// over proto and returns the first line of the answer.
func ask(t testing.TB, path, proto, addr string, timeout time.Duration) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	dial := func() { c, err = net.DialTimeout(proto+"4", addr, timeout) }
	if path == "" {
		dial()
	} else {
		inNS(t, path, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("hello")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// mustAsk is ask that fails the test, with a few tries for UDP (a datagram
// may be lost; a TCP connect is reliable).
func mustAsk(t testing.TB, path, proto, addr, want string) {
	t.Helper()
	var got string
	var err error
	for try := 0; try < 3; try++ {
		got, err = ask(t, path, proto, addr, 2*time.Second)
		if err == nil || proto == "tcp" {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s %s from %q: %v", proto, addr, path, err)
	}
	if got != want {
		t.Fatalf("%s %s from %q answered %q, want %q", proto, addr, path, got, want)
	}
}

// mustNotReach fails the test if addr answers from path within a second.
func mustNotReach(t testing.TB, path, proto, addr string) error {
	t.Helper()
	got, err := ask(t, path, proto, addr, time.Second)
	if err == nil {
		t.Fatalf("%s %s from %q answered %q; want no way through", proto, addr, path, got)
	}
	return err
}

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// hostAddress is an IPv4 address of the host's default-route interface
// (eth0 here): what "the host's own address" means in the port tests.
func hostAddress(t testing.TB) netip.Addr {
	t.Helper()
	if ip, ok := HostAddress(); ok {
		return ip
	}
	if testutil.InCI() {
		t.Fatal("no IPv4 address on the host's default-route interface (under CI=true this fails)")
	}
	t.Skip("no IPv4 address on the host's default-route interface (under CI=true this would fail)")
	return netip.Addr{}
}

// linksIn lists the interfaces of the namespace at path: name -> IPv4 addresses.
func linksIn(t testing.TB, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := inNetns(path, func(h *netlink.Handle) error {
		links, err := whole(h.LinkList)
		if err != nil {
			return err
		}
		for _, l := range links {
			addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
			var s []string
			for _, a := range addrs {
				s = append(s, a.IPNet.String())
			}
			out[l.Attrs().Name] = s
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// defaultRouteIn returns the default route of the namespace: interface and gateway.
func defaultRouteIn(t testing.TB, path string) (string, string) {
	t.Helper()
	var dev, gw string
	err := inNetns(path, func(h *netlink.Handle) error {
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				l, err := h.LinkByIndex(r.LinkIndex)
				if err != nil {
					return err
				}
				dev, gw = l.Attrs().Name, r.Gw.String()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dev, gw
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
