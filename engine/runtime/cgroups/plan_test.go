package cgroups

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func render(ws []Write) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}

var sample = &specs.LinuxResources{
	Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20)},
	CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
	Pids:   &specs.LinuxPids{Limit: i64(64)},
	BlockIO: &specs.LinuxBlockIO{Weight: u16(500),
		ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}}},
	Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
	},
}

func TestPlanV1(t *testing.T) {
	ws, err := Plan(V1, sample)
	if err != nil {
		t.Fatal(err)
	}
	want := `memory/memory.limit_in_bytes=67108864
memory/memory.memsw.limit_in_bytes=134217728
memory/memory.soft_limit_in_bytes=33554432
cpu/cpu.shares=512
cpu/cpu.cfs_period_us=100000
cpu/cpu.cfs_quota_us=50000
cpuset/cpuset.cpus=0
cpuset/cpuset.mems=0
pids/pids.max=64
blkio/blkio.weight=500
blkio/blkio.throttle.read_bps_device=8:0 1048576
devices/devices.deny=a
devices/devices.allow=c 1:3 rwm
devices/devices.allow=c 136:* rwm
`
	if got := render(ws); got != want {
		t.Fatalf("v1 plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanV2(t *testing.T) {
	ws, err := Plan(V2, sample)
	if err != nil {
		t.Fatal(err)
	}
	want := `memory.max=67108864
memory.swap.max=67108864
memory.low=33554432
cpu.weight=20
cpu.max=50000 100000
cpuset.cpus=0
cpuset.mems=0
pids.max=64
io.weight=default 4950
io.max=8:0 rbps=1048576
`
	if got := render(ws); got != want {
		t.Fatalf("v2 plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanRefusesWhatTheHostCannotDo(t *testing.T) {
	if _, err := Plan(V1, &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}); err == nil {
		t.Error("unified keys accepted on v1")
	}
	if _, err := Plan(V2, &specs.LinuxResources{Unified: map[string]string{"../escape": "1"}}); err == nil {
		t.Error("a unified key with a slash was accepted")
	}
	if _, err := Plan(V2, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}}); err == nil {
		t.Error("swap below the limit accepted")
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestParseV1Mount(t *testing.T) {
	h, ok := parseV1Mount(`36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct`)
	if !ok || h.Mountpoint != "/sys/fs/cgroup/cpu,cpuacct" || strings.Join(h.Controllers, ",") != "cpu,cpuacct" {
		t.Fatalf("got %+v %v", h, ok)
	}
	if _, ok := parseV1Mount(`37 25 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd`); ok {
		t.Fatal("a named hierarchy without controllers was taken")
	}
	if _, ok := parseV1Mount(`38 25 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw`); ok {
		t.Fatal("cgroup2 taken as v1")
	}
}
