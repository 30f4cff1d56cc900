package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Top is a container's processes, as `top` shows them: a table.
type Top struct {
	Titles    []string   `json:"Titles"`
	Processes [][]string `json:"Processes"`
}

// Stats is one sample of what a container's processes use, for `stats`.
// CPU use is a rate: compare two samples with CPUPercent.
type Stats struct {
	Read        time.Time `json:"read"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	CPUNanos    uint64    `json:"cpu_nanos"` // CPU time used so far
	OnlineCPUs  int       `json:"online_cpus"`
	MemoryUsage uint64    `json:"memory_usage"` // page cache that can be reclaimed not counted, as docker shows it
	MemoryLimit uint64    `json:"memory_limit"` // the host's memory when the container has no limit
	NetRx       uint64    `json:"net_rx"`
	NetTx       uint64    `json:"net_tx"`
	BlockRead   uint64    `json:"block_read"`
	BlockWrite  uint64    `json:"block_write"`
	Pids        uint64    `json:"pids"`
}

// CPUPercent is the CPU the container used between two samples, in
// percent of one CPU (200% is two CPUs busy), as docker shows it.
func CPUPercent(prev, cur Stats) float64 {
	wall := cur.Read.Sub(prev.Read)
	if wall <= 0 || cur.CPUNanos < prev.CPUNanos || prev.Read.IsZero() {
		return 0
	}
	return float64(cur.CPUNanos-prev.CPUNanos) / float64(wall.Nanoseconds()) * 100
}

// Stats samples what the running container ref uses.
func (m *Manager) Stats(ctx context.Context, ref string) (Stats, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return Stats{}, err
	}
	e.op.Lock()
	c := *e.c
	e.op.Unlock()
	if c.State.Status != Running && c.State.Status != Paused {
		return Stats{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.Name))
	}
	st, err := m.rt.Stats(ctx, c.ID)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	out := Stats{
		Read: time.Now(), ID: c.ID, Name: c.Name,
		CPUNanos: uint64(st.CPUUsage.Nanoseconds()), OnlineCPUs: runtime.NumCPU(),
		MemoryUsage: st.MemoryUsage, MemoryLimit: st.MemoryLimit,
		NetRx: st.NetRxBytes, NetTx: st.NetTxBytes,
		BlockRead: st.IOReadBytes, BlockWrite: st.IOWriteBytes, Pids: st.Pids,
	}
	if st.MemoryInactiveFile < out.MemoryUsage {
		out.MemoryUsage -= st.MemoryInactiveFile
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		host := uint64(si.Totalram) * uint64(si.Unit)
		if out.MemoryLimit == 0 || out.MemoryLimit > host {
			out.MemoryLimit = host
		}
	}
	return out, nil
}

// Top lists the container's processes. Without psArgs the table is ps
// -ef's (UID PID PPID C STIME TTY TIME CMD), read from /proc; with them,
// the host's ps runs with those options and its rows for the container's
// processes are kept, as docker does.
func (m *Manager) Top(ctx context.Context, ref string, psArgs []string) (Top, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return Top{}, err
	}
	e.op.Lock()
	c := *e.c
	e.op.Unlock()
	if c.State.Status != Running && c.State.Status != Paused {
		return Top{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.Name))
	}
	pids, err := m.rt.Pids(ctx, c.ID)
	if err != nil {
		return Top{}, fmt.Errorf("top of %s: %w", c.Name, err)
	}
	slices.Sort(pids)
	if len(psArgs) > 0 {
		return hostPs(ctx, psArgs, pids)
	}
	t := Top{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	boot := bootTime()
	for _, pid := range pids {
		if row, ok := psRow(pid, boot); ok {
			t.Processes = append(t.Processes, row)
		}
	}
	return t, nil
}

// clockTicks is USER_HZ, which /proc reports times in; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// psRow is one process as ps -ef shows it.
func psRow(pid int, boot time.Time) ([]string, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, false
	}
	// comm is in parentheses and may hold spaces: split after its last ')'.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return nil, false
	}
	comm := string(stat[open+1 : end])
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 20 {
		return nil, false
	}
	// After comm: state(0) ppid(1) pgrp session tty_nr(4) ... utime(11) stime(12) ... starttime(19)
	ppid := f[1]
	ttyNr, _ := strconv.ParseUint(f[4], 10, 64)
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	start, _ := strconv.ParseUint(f[19], 10, 64)
	cpu := time.Duration(utime+stime) * time.Second / clockTicks
	started := boot.Add(time.Duration(start) * time.Second / clockTicks)
	c := "0"
	if age := time.Since(started); age > 0 {
		c = strconv.Itoa(int(cpu * 100 / age))
	}
	return []string{
		uidName(dir), strconv.Itoa(pid), ppid, c, startTime(started), ttyName(ttyNr),
		fmt.Sprintf("%02d:%02d:%02d", int(cpu.Hours()), int(cpu.Minutes())%60, int(cpu.Seconds())%60),
		cmdline(dir, comm),
	}, true
}

func uidName(dir string) string {
	f, err := os.Open(dir + "/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Uid:"); ok {
			fs := strings.Fields(v)
			if len(fs) == 0 {
				break
			}
			if u, err := user.LookupId(fs[0]); err == nil {
				return u.Username
			}
			return fs[0]
		}
	}
	return "?"
}

func startTime(t time.Time) string {
	now := time.Now()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04")
	}
	return t.Format("Jan02")
}

func ttyName(nr uint64) string {
	if nr == 0 {
		return "?"
	}
	major, minor := unix.Major(nr), unix.Minor(nr)
	if major >= 136 && major <= 143 {
		return "pts/" + strconv.Itoa(int((major-136)*256+minor))
	}
	return fmt.Sprintf("%d,%d", major, minor)
}

func cmdline(dir, comm string) string {
	b, err := os.ReadFile(dir + "/cmdline")
	if err != nil || len(b) == 0 {
		return "[" + comm + "]"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
}

// hostPs runs the host's ps with args and keeps the header and the rows
// whose PID column is one of pids.
func hostPs(ctx context.Context, args []string, pids []int) (Top, error) {
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		return Top{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ps %s: %v", strings.Join(args, " "), err))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return Top{}, nil
	}
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return Top{}, errdefs.ErrInvalidArgument.WithMessage("ps " + strings.Join(args, " ") + ": no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	t := Top{Titles: titles}
	for _, line := range lines[1:] {
		fs := strings.Fields(line)
		if len(fs) <= col || !want[fs[col]] {
			continue
		}
		// The last column (the command) may hold spaces.
		if len(fs) > len(titles) {
			fs = append(fs[:len(titles)-1], strings.Join(fs[len(titles)-1:], " "))
		}
		t.Processes = append(t.Processes, fs)
	}
	return t, nil
}
