package cgroups

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Write is one value for one control file of a container's cgroup.
type Write struct {
	// Controller names the v1 hierarchy the file lives in ("memory"); "" on v2.
	Controller string
	File       string
	Value      string
	// Fallbacks are files tried in order when File does not exist: the
	// same knob under another scheduler's name (blkio.bfq.weight).
	Fallbacks []string
	// Optional writes are skipped, with a warning, when the file does not
	// exist: memory.memsw.* without swap accounting, for one.
	Optional bool
}

func (w Write) String() string {
	c := w.Controller
	if c != "" {
		c += "/"
	}
	return fmt.Sprintf("%s%s=%s", c, w.File, w.Value)
}

// Plan lists the writes that apply r on a host of version v, in order.
// Device rules are part of it on v1 (the devices controller); on v2 they
// need an eBPF program and are not part of the plan.
func Plan(v Version, r *specs.LinuxResources) ([]Write, error) {
	if r == nil {
		return nil, nil
	}
	if v == V2 {
		return planV2(r)
	}
	return planV1(r)
}

func planV1(r *specs.LinuxResources) ([]Write, error) {
	var ws []Write
	add := func(ctrl, file, value string) {
		ws = append(ws, Write{Controller: ctrl, File: file, Value: value})
	}
	if len(r.Unified) > 0 {
		return nil, fmt.Errorf("linux.resources.unified needs cgroup v2; this host has v1")
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			add("memory", "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10))
		}
		if m.Swap != nil {
			ws = append(ws, Write{Controller: "memory", File: "memory.memsw.limit_in_bytes",
				Value: strconv.FormatInt(*m.Swap, 10), Optional: true})
		}
		if m.Reservation != nil {
			add("memory", "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
		}
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			ws = append(ws, Write{Controller: "memory", File: "memory.swappiness",
				Value: strconv.FormatUint(*m.Swappiness, 10), Optional: true})
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			add("memory", "memory.oom_control", "1")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		if c.Period != nil && *c.Period != 0 {
			add("cpu", "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
		}
		if c.Quota != nil && *c.Quota != 0 {
			add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			add("cpu", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			add("cpu", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
		}
		if c.Idle != nil {
			ws = append(ws, Write{Controller: "cpu", File: "cpu.idle", Value: strconv.FormatInt(*c.Idle, 10), Optional: true})
		}
		if c.Cpus != "" {
			add("cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset", "cpuset.mems", c.Mems)
		}
	}
	if p := r.Pids; p != nil {
		add("pids", "pids.max", pidsMax(p))
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			ws = append(ws, Write{Controller: "blkio", File: "blkio.weight", Value: strconv.FormatUint(uint64(*b.Weight), 10),
				Fallbacks: []string{"blkio.bfq.weight"}, Optional: true})
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				ws = append(ws, Write{Controller: "blkio", File: "blkio.weight_device",
					Value:     fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight),
					Fallbacks: []string{"blkio.bfq.weight_device"}, Optional: true})
			}
		}
		for _, t := range []struct {
			file string
			devs []specs.LinuxThrottleDevice
		}{
			{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				add("blkio", t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate))
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			add("net_cls", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		for _, p := range n.Priorities {
			add("net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
		}
	}
	for _, d := range r.Devices {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		add("devices", file, deviceRule(d))
	}
	return ws, nil
}

func planV2(r *specs.LinuxResources) ([]Write, error) {
	var ws []Write
	add := func(file, value string) { ws = append(ws, Write{File: file, Value: value}) }
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			add("memory.max", maxOrNumber(*m.Limit))
		}
		if m.Swap != nil {
			// The spec's swap is memory plus swap, as on v1; v2 limits swap alone.
			swap := "max"
			if *m.Swap >= 0 {
				limit := int64(-1)
				if m.Limit != nil {
					limit = *m.Limit
				}
				if limit < 0 {
					return nil, fmt.Errorf("memory.swap %d needs a memory limit on cgroup v2", *m.Swap)
				}
				if *m.Swap < limit {
					return nil, fmt.Errorf("memory.swap %d is below memory.limit %d (swap counts memory plus swap)", *m.Swap, limit)
				}
				swap = strconv.FormatInt(*m.Swap-limit, 10)
			}
			ws = append(ws, Write{File: "memory.swap.max", Value: swap, Optional: true})
		}
		if m.Reservation != nil {
			add("memory.low", maxOrNumber(*m.Reservation))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu.weight", strconv.FormatUint(SharesToWeight(*c.Shares), 10))
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			quota, period := "max", uint64(100000)
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			add("cpu.max", fmt.Sprintf("%s %d", quota, period))
		}
		if c.Idle != nil {
			ws = append(ws, Write{File: "cpu.idle", Value: strconv.FormatInt(*c.Idle, 10), Optional: true})
		}
		if c.Cpus != "" {
			add("cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset.mems", c.Mems)
		}
	}
	if p := r.Pids; p != nil {
		add("pids.max", pidsMax(p))
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			ws = append(ws, Write{File: "io.weight", Value: "default " + strconv.FormatUint(BlkioToIOWeight(*b.Weight), 10), Optional: true})
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				ws = append(ws, Write{File: "io.weight", Value: fmt.Sprintf("%d:%d %d", d.Major, d.Minor, BlkioToIOWeight(*d.Weight)), Optional: true})
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				add("io.max", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, t.key, d.Rate))
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		if strings.Contains(k, "/") || k == "" || strings.HasPrefix(k, ".") {
			return nil, fmt.Errorf("linux.resources.unified: bad key %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, r.Unified[k])
	}
	return ws, nil
}

// SharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000), as runc and crun do.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// BlkioToIOWeight converts a blkio weight (10..1000) to an io.weight (1..10000).
func BlkioToIOWeight(w uint16) uint64 {
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

func pidsMax(p *specs.LinuxPids) string {
	if p.Limit == nil || *p.Limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(*p.Limit, 10)
}

func maxOrNumber(n int64) string {
	if n < 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// deviceRule renders a device cgroup rule as devices.allow takes it: "c 1:3 rwm".
func deviceRule(d specs.LinuxDeviceCgroup) string {
	t := d.Type
	if t == "" || t == "a" {
		// The kernel reads "a" as every device with every access and
		// ignores the rest of the rule.
		return "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	return fmt.Sprintf("%s %s:%s %s", t, num(d.Major), num(d.Minor), access)
}
