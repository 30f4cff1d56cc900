package engine_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
)

// TestDefaultNetworkAnswersNames guards the default network's DNS: made on
// first use by the container manager, it gets a listener like any other,
// so a container on it resolves another by name through its resolv.conf.
func TestDefaultNetworkAnswersNames(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	web := start(t, e, container.Config{Name: "web", Cmd: sleeper, NetworkMode: "bridge"})
	client := start(t, e, container.Config{Name: "client", Cmd: sleeper, NetworkMode: "bridge"})
	var out syncBuffer
	code, err := e.Containers.Exec(context.Background(), client.ID, container.ExecConfig{Cmd: []string{"nslookup", "web"}}, container.ExecIO{Stdout: &out, Stderr: &out})
	ip := web.Network.Networks[container.DefaultNetwork].IPAddress
	if err != nil || code != 0 || ip == "" || !strings.Contains(out.String(), ip) {
		t.Fatalf("nslookup web: exit %d %v, want %q in:\n%s", code, err, ip, out.String())
	}
}

// TestNetworkListensOnceTheGatewayPortIsFree: a subnet another state root
// has just freed can be taken at once, while that root's DNS listener may
// still hold the gateway's port 53 for a moment. The new network's
// listener must come up when the port is free, not be given up.
func TestNetworkListensOnceTheGatewayPortIsFree(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	const subnet, gateway = "10.231.77.0/24", "10.231.77.1"
	// The other root's listener: bound before the address exists, as
	// berth's are (IP_FREEBIND).
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1) })
		return errors.Join(err, serr)
	}}
	held, err := lc.Listen(ctx, "tcp", gateway+":53")
	if err != nil {
		t.Fatal(err)
	}
	released := time.AfterFunc(300*time.Millisecond, func() { held.Close() })
	defer released.Stop()
	defer held.Close()

	if _, err := e.CreateNetwork(ctx, network.CreateOptions{Name: "late", IPAM: []network.IPAMConfig{{Subnet: subnet}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.RemoveNetwork(context.Background(), "late") })
	web := start(t, e, container.Config{Name: "late-web", Cmd: sleeper, Networks: []container.Attachment{{Network: "late"}}})
	t.Cleanup(func() { _ = e.Containers.Remove(context.Background(), web.ID, container.RemoveOptions{Force: true}) })

	client := start(t, e, container.Config{Name: "late-client", Cmd: sleeper, Networks: []container.Attachment{{Network: "late"}}})
	t.Cleanup(func() { _ = e.Containers.Remove(context.Background(), client.ID, container.RemoveOptions{Force: true}) })
	var out syncBuffer
	code, err := e.Containers.Exec(ctx, client.ID, container.ExecConfig{Cmd: []string{"nslookup", "late-web"}}, container.ExecIO{Stdout: &out, Stderr: &out})
	ip := web.Network.Networks["late"].IPAddress
	if err != nil || code != 0 || ip == "" || !strings.Contains(out.String(), ip) {
		t.Fatalf("nslookup late-web on the new network: exit %d %v, want %q in:\n%s", code, err, ip, out.String())
	}
}
