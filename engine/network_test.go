package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine/container"
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
