package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
)

// TestServiceOptionsReachTheProcess runs one container with many of the
// Compose service options and checks, from inside it, that each took
// effect (the spec builder's contract with the runtime).
func TestServiceOptionsReachTheProcess(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	script := strings.Join([]string{
		`echo "hostname=$(hostname)"`,
		`echo "user=$(id -u):$(id -g)"`,
		`echo "cwd=$(pwd)"`,
		`echo "env=$GREETING"`,
		`touch /rootfs-file 2>/dev/null && echo rootfs=rw || echo rootfs=ro`,
		`echo "nofile=$(ulimit -n)"`,
		`echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"`,
		`echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"`,
		`echo "shm=$(df -k /dev/shm | tail -1 | awk '{print $2}')"`,
		`echo "sysctl=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"`,
		`echo "nnp=$(grep NoNewPrivs /proc/self/status | awk '{print $2}')"`,
		`ls -l /dev/extra-null | cut -c1 | sed 's/^/device=/'`,
		`trap 'echo got=USR1; exit 0' USR1`,
		`echo ready`,
		`while :; do usleep 10000; done`,
	}, "\n")
	stop := 2 * time.Second
	c := start(t, e, container.Config{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script},
		Hostname: "box", User: "1000:1000", WorkingDir: "/tmp", Env: []string{"GREETING=hi"},
		ReadOnly: true, StopSignal: "SIGUSR1", StopTimeout: &stop,
		Ulimits:   []container.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}},
		Resources: container.Resources{PidsLimit: 64, Memory: 64 << 20, ShmSize: 8 << 20},
		Sysctls:   map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"},
		Devices:   []container.Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/extra-null", CgroupPermissions: "rwm"}},
	})
	var out syncBuffer
	go func() {
		_ = e.Containers.Logs(context.Background(), c.ID, followLogs, func(en logEntry) error {
			_, err := out.Write(en.Line)
			return err
		})
	}()
	out.WaitFor(t, "ready\n")
	for _, want := range []string{
		"hostname=box\n", "user=1000:1000\n", "cwd=/tmp\n", "env=hi\n", "rootfs=ro\n", "nofile=512\n",
		"pids=64\n", "mem=67108864\n", "shm=8192\n", "sysctl=80\n", "nnp=1\n", "device=c\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("want %q in the container's output:\n%s", want, out.String())
		}
	}
	if err := e.Containers.Stop(context.Background(), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Containers.Get(c.ID)
	if got.State.ExitCode != 0 {
		t.Errorf("stop_signal: exit %d, want the USR1 trap's 0", got.State.ExitCode)
	}
	out.WaitFor(t, "got=USR1\n")
}
