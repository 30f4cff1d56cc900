// Command containerbench measures engine/container for `make bench`
// (hack/bench/container.sh), against a real `berth daemon` ($BERTH_BINARY)
// on a fresh state root:
//
//   - create-plus-start latency per container through the API (until the
//     container's process has exec'd), beside the runtime's own create and
//     start of the same kind of bundle, in process: one start at a time,
//     and in blocks of back-to-back starts;
//   - berth's idle memory (daemon and monitor, no container), RSS and PSS
//     from /proc/PID/smaps_rollup;
//   - berth's memory per running container: the growth of the daemon's
//     and the monitor's memory from N=10 to N=100 running containers,
//     divided by 90 (the containers' own processes are not counted);
//   - log throughput: a container flooding stdout, in lines per second,
//     every line accounted for in its log.
//
// With -against BIN, a second daemon from another berth binary takes its
// turns in the latency measure: two builds compared on the same machine
// state, which on this kind of VM drifts by more than the builds differ
// from one run to the next.
//
// It needs root; it prints figures and asserts nothing.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/mountinfo"
	"github.com/berth-dev/berth/internal/overlay"
	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/spreaddirs"
)

var (
	block   = flag.Int("block", 10, "starts in a row on one side of the latency measure")
	pause   = flag.Duration("pause", 100*time.Millisecond, "pause before each block (or single start) of the latency measure")
	against = flag.String("against", "", "another berth binary whose daemon, on a state root of its own, takes its turns in the latency measure beside $BERTH_BINARY's (to compare two builds on the same machine state)")
)

func main() {
	starts := flag.Int("starts", 200, "containers created and started one after the other for the latency (half as many one at a time): enough that the median moves less than the difference it measures")
	lines := flag.Int("lines", 2000000, "lines the flooding container prints")
	network := flag.String("network", "bridge", "network of the containers counted for memory (bridge or none)")
	latencyOnly := flag.Bool("latency-only", false, "measure the create+start latency only")
	flag.Parse()
	bin := os.Getenv("BERTH_BINARY")
	if bin == "" {
		fmt.Fprintln(os.Stderr, "containerbench: set BERTH_BINARY to a berth binary (make build)")
		os.Exit(2)
	}
	if err := run(bin, *starts, *lines, *network, *latencyOnly); err != nil {
		fmt.Fprintln(os.Stderr, "containerbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, root string
	daemon    *exec.Cmd
	client    *api.Client
	cc        *api.ContainerClient
}

func run(bin string, starts, lines int, network string, latencyOnly bool) (err error) {
	tmp, err := os.MkdirTemp("/var/tmp", "berth-bench-container.")
	if err != nil {
		return err
	}
	if os.Getenv("CONTAINERBENCH_KEEP") == "" {
		defer os.RemoveAll(tmp)
	} else {
		fmt.Println("container: keeping", tmp)
	}
	b := &bench{bin: bin, root: filepath.Join(tmp, "root")}
	if err := b.start(); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.stop()) }()
	if err := b.importBusybox(); err != nil {
		return err
	}

	// Idle: the daemon and its monitor, before any container.
	time.Sleep(2 * time.Second)
	idle, err := b.memory()
	if err != nil {
		return err
	}
	fmt.Printf("container: idle memory (daemon + monitor, no container): RSS %.1f MB, PSS %.1f MB (daemon RSS %.1f / PSS %.1f, monitor RSS %.1f / PSS %.1f)\n",
		mb(idle.rss()), mb(idle.pss()), mb(idle.daemon.rss), mb(idle.daemon.pss), mb(idle.monitor.rss), mb(idle.monitor.pss))

	if n := memoryCgroups(); n > 0 {
		// Removed containers leave dying memory cgroups while page cache
		// charged to them stays: part of the machine's state that the
		// latencies of both sides may depend on.
		fmt.Printf("container: host: %d memory cgroups before the latency measure (/proc/cgroups, dying ones included)\n", n)
	}
	// On ext4 without a journal a new inode costs a scan of the block
	// group's recently deleted ones, which the last minutes' removals pile
	// up (see internal/spreaddirs): both sides' starts make files.
	if spread, beside, err := fileCreation(filepath.Join(b.root, "containers"), tmp); err == nil {
		fmt.Printf("container: host: a new file takes %.0f µs in a spread directory of the state root, %.0f µs in the bench's own directory (ext4 without a journal slows it after removals)\n", spread, beside)
	}
	sides := []*bench{b}
	if *against != "" {
		o := &bench{bin: *against, root: filepath.Join(tmp, "root-against")}
		if err := o.start(); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, o.stop()) }()
		if err := o.importBusybox(); err != nil {
			return err
		}
		sides = append(sides, o)
	}
	if err := startLatency(tmp, starts, sides); err != nil {
		return err
	}
	if latencyOnly {
		return nil
	}
	if err := b.perContainer(network); err != nil {
		return err
	}
	return b.logThroughput(lines)
}

func (b *bench) start() error {
	if err := os.MkdirAll(b.root, 0o711); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(b.root, "..", "daemon.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	host := "unix://" + filepath.Join(b.root, "berth.sock")
	b.daemon = exec.Command(b.bin, "daemon", "--root", b.root, "--host", host)
	b.daemon.Stdout, b.daemon.Stderr = logFile, logFile
	b.daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := b.daemon.Start(); err != nil {
		return err
	}
	if b.client, err = api.NewClient(host); err != nil {
		return err
	}
	b.cc = b.client.Containers()
	for range 200 {
		if b.client.Ping(context.Background()) == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the daemon did not answer")
}

// stop removes every container and network, and stops the daemon (and so
// the idle monitor).
func (b *bench) stop() error {
	ctx := context.Background()
	if err := b.removeAll(); err != nil {
		return err
	}
	if nets, err := b.client.Networks().List(ctx, nil); err == nil {
		for _, n := range nets {
			_ = b.client.Networks().Remove(ctx, n.Name)
		}
	}
	_ = b.daemon.Process.Signal(syscall.SIGTERM)
	_, err := b.daemon.Process.Wait()
	return err
}

func (b *bench) removeAll() error {
	ctx := context.Background()
	cs, err := b.cc.List(ctx, container.ListOptions{All: true})
	if err != nil {
		return err
	}
	return parallel(len(cs), 8, func(i int) error {
		return b.cc.Remove(ctx, cs[i].ID, container.RemoveOptions{Force: true, Volumes: true})
	})
}

func parallel(n, width int, fn func(int) error) error {
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// busyboxLayer is a layer with the host's busybox-static and its applets.
func busyboxLayer() ([]byte, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "etc/", "tmp/", "proc/", "sys/", "dev/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bb); err != nil {
		return nil, err
	}
	for _, applet := range []string{"sh", "sleep", "seq", "cat", "echo", "true"} {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(passwd))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(passwd); err != nil {
		return nil, err
	}
	return buf.Bytes(), tw.Close()
}

func (b *bench) importBusybox() error {
	layer, err := busyboxLayer()
	if err != nil {
		return err
	}
	_, err = b.client.Images().Import(context.Background(), bytes.NewReader(layer), image.ImportOptions{
		Reference: "busybox", Config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	})
	return err
}

// usage is a process's memory in bytes.
type usage struct{ rss, pss int64 }

type berthMemory struct{ daemon, monitor usage }

func (m berthMemory) rss() int64 { return m.daemon.rss + m.monitor.rss }
func (m berthMemory) pss() int64 { return m.daemon.pss + m.monitor.pss }

func smapsRollup(pid int) (usage, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return usage{}, err
	}
	defer f.Close()
	var u usage
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			u.rss = kb << 10
		case "Pss:":
			u.pss = kb << 10
		}
	}
	return u, s.Err()
}

// memory samples the daemon's and the monitor's memory three times a
// second apart and keeps the median of each (Go's heap breathes).
func (b *bench) memory() (berthMemory, error) {
	resp, err := monitor.NewClient(b.root).Ping(context.Background())
	if err != nil {
		return berthMemory{}, err
	}
	var ds, ms []usage
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		d, err := smapsRollup(b.daemon.Process.Pid)
		if err != nil {
			return berthMemory{}, err
		}
		m, err := smapsRollup(resp.MonitorPid)
		if err != nil {
			return berthMemory{}, err
		}
		ds, ms = append(ds, d), append(ms, m)
	}
	return berthMemory{daemon: median(ds), monitor: median(ms)}, nil
}

func median(us []usage) usage {
	rss, pss := make([]int64, len(us)), make([]int64, len(us))
	for i, u := range us {
		rss[i], pss[i] = u.rss, u.pss
	}
	slices.Sort(rss)
	slices.Sort(pss)
	return usage{rss: rss[len(rss)/2], pss: pss[len(pss)/2]}
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// memoryCgroups is the memory controller's count of cgroups in
// /proc/cgroups, or 0.
func memoryCgroups() int {
	b, _ := os.ReadFile("/proc/cgroups")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "memory" {
			n, _ := strconv.Atoi(f[2])
			return n
		}
	}
	return 0
}

// fileCreation returns the mean time in µs to create an empty file in a
// new subdirectory of each of the two directories.
func fileCreation(dirs ...string) (spread, beside float64, err error) {
	var us []float64
	for _, parent := range dirs {
		dir, err := os.MkdirTemp(parent, ".files-")
		if err != nil {
			return 0, 0, err
		}
		const n = 200
		t0 := time.Now()
		for i := range n {
			f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
			if err != nil {
				os.RemoveAll(dir)
				return 0, 0, err
			}
			f.Close()
		}
		us = append(us, float64(time.Since(t0).Microseconds())/n)
		if err := os.RemoveAll(dir); err != nil {
			return 0, 0, err
		}
	}
	return us[0], us[1], nil
}

// startLatency times create+start through the API of each side's daemon,
// and the runtime's own create+start of the same spec, all until the
// process exec'd.
func startLatency(tmp string, n int, sides []*bench) error {
	// A first container on each side warms its path up; the first side's
	// lends its spec (its /etc files stay while it exists) to the runtime,
	// with a network namespace of its own, and its image's layers: the
	// runtime gets a root filesystem of the same kind, an overlay of them
	// with an empty upper dir, mounted before its clock starts (as a
	// runtime gets a bundle).
	var first string
	for i, b := range sides {
		id, _, err := b.runOne("warm")
		if err != nil {
			return err
		}
		if i == 0 {
			first = id
		}
	}
	b := sides[0]
	bundle := filepath.Join(b.root, "containers", first, "bundle")
	spec, err := runtime.LoadSpec(bundle)
	if err != nil {
		return err
	}
	lower, err := overlayLower(filepath.Join(bundle, "rootfs"))
	if err != nil {
		return err
	}
	rl, err := newRuntimeLatency(b.bin, filepath.Join(tmp, "rt"), spec, lower)
	if err != nil {
		return err
	}
	defer rl.close()
	if _, err := rl.once(); err != nil {
		return err
	}
	// Two ways, each side in turns so that all meet the same machine: one
	// start at a time (each after a pause, as a user's `run`), and in
	// blocks of back-to-back starts (as compose makes them), where what a
	// side does in the background after its starts (berth readies a spare
	// setup stage and a directory for the next create) lands on its own
	// next start, not on another side's clock.
	for _, m := range []struct {
		name         string
		starts, size int
	}{
		{"one at a time", n / 2, 1},
		{fmt.Sprintf("in blocks of %d back to back", *block), n, *block},
	} {
		viaAPI, own, err := latencyBlocks(sides, rl, m.name, m.starts, m.size)
		if err != nil {
			return err
		}
		r := medianDuration(own)
		for i, side := range sides {
			a := medianDuration(viaAPI[i])
			who := "berth"
			if i > 0 {
				who = "berth from -against " + side.bin
			}
			fmt.Printf("container: create+start latency, %d containers %s, until the process exec'd (network none): %s through its API median %.1f ms (middle half %s, mean %.1f), the runtime alone on the same spec and the same overlay of the image median %.1f ms (middle half %s, mean %.1f): %s takes %.0f%% of the runtime's time\n",
				m.starts, m.name, who, ms(a), middleHalf(viaAPI[i]), ms(meanDuration(viaAPI[i])), ms(r), middleHalf(own), ms(meanDuration(own)), who, 100*float64(a)/float64(r))
		}
	}
	for _, b := range sides {
		if err := b.removeAll(); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) runOne(name string) (string, time.Duration, error) {
	ctx := context.Background()
	t0 := time.Now()
	c, err := b.cc.Create(ctx, container.Config{Name: name, Image: "busybox", Cmd: []string{"sleep", "100000"}, NetworkMode: "none"})
	if err == nil {
		err = b.cc.Start(ctx, c.ID)
	}
	return c.ID, time.Since(t0), err
}

// latencyBlocks times n starts on each side, size at a time in turns, with
// a pause before each block. The berth sides take their turns in an order
// reversed every round, so that none always follows the runtime.
func latencyBlocks(sides []*bench, rl *runtimeLatency, name string, n, size int) (viaAPI [][]time.Duration, own []time.Duration, err error) {
	viaAPI = make([][]time.Duration, len(sides))
	for i := 0; i < n; i += size {
		k := min(size, n-i)
		for t := range sides {
			s := t
			if (i/size)%2 == 1 {
				s = len(sides) - 1 - t
			}
			time.Sleep(*pause)
			for j := range k {
				_, d, err := sides[s].runOne(fmt.Sprintf("lat-%s-%d", strings.ReplaceAll(name, " ", "-"), i+j))
				if err != nil {
					return nil, nil, err
				}
				viaAPI[s] = append(viaAPI[s], d)
			}
		}
		time.Sleep(*pause)
		for range k {
			d, err := rl.once()
			if err != nil {
				return nil, nil, err
			}
			own = append(own, d)
		}
	}
	return viaAPI, own, nil
}

// overlayLower returns the lower dirs of the overlay mounted at rootfs,
// from /proc/self/mountinfo.
func overlayLower(rootfs string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || mountinfo.Unescape(f[4]) != rootfs {
			continue
		}
		g := strings.Fields(post)
		if len(g) < 3 || g[0] != "overlay" {
			continue
		}
		for _, opt := range strings.Split(g[2], ",") {
			if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
				return strings.Split(mountinfo.Unescape(v), ":"), nil
			}
		}
	}
	return nil, fmt.Errorf("no overlay with a lowerdir option at %s", rootfs)
}

// runtimeLatency creates and starts containers of one spec with
// engine/runtime in this process, the setup stage re-executed from bin,
// each on a fresh overlay of lower.
type runtimeLatency struct {
	rt    *runtime.Runtime
	dir   string
	spec  *specs.Spec
	lower []string
	pids  []int
}

func newRuntimeLatency(bin, dir string, spec *specs.Spec, lower []string) (*runtimeLatency, error) {
	rt, err := runtime.New(runtime.Config{StateDir: filepath.Join(dir, "state"), CgroupParent: rootid.CgroupParent(dir), Binary: bin})
	if err != nil {
		return nil, err
	}
	// Its bundles placed as berth places its containers' directories.
	if err := spreaddirs.Mark(dir); err != nil {
		return nil, err
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = ""
		}
	}
	return &runtimeLatency{rt: rt, dir: dir, spec: spec, lower: lower}, nil
}

func (r *runtimeLatency) once() (time.Duration, error) {
	ctx := context.Background()
	i := len(r.pids)
	id := fmt.Sprintf("rt%d", i)
	bundle := filepath.Join(r.dir, id)
	rootfs, upper, work := filepath.Join(bundle, "rootfs"), filepath.Join(bundle, "upper"), filepath.Join(bundle, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, err
		}
	}
	if err := overlay.Mount(rootfs, r.lower, upper, work); err != nil {
		return 0, err
	}
	spec := *r.spec
	spec.Root = &specs.Root{Path: rootfs}
	if err := runtime.WriteSpec(bundle, &spec); err != nil {
		return 0, err
	}
	t0 := time.Now()
	p, err := r.rt.Create(ctx, id, bundle, runtime.IO{})
	if err != nil {
		return 0, err
	}
	r.pids = append(r.pids, p.Pid)
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
	if err := r.rt.Start(ctx, id); err != nil {
		return 0, err
	}
	for {
		now, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
		if err != nil || now != exe {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	return time.Since(t0), nil
}

func (r *runtimeLatency) close() {
	ctx := context.Background()
	for i, pid := range r.pids {
		id := fmt.Sprintf("rt%d", i)
		_ = r.rt.Kill(ctx, id, syscall.SIGKILL, true)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		_ = r.rt.Delete(ctx, id, runtime.DeleteOptions{Force: true})
		_ = syscall.Unmount(filepath.Join(r.dir, id, "rootfs"), syscall.MNT_DETACH)
	}
	r.rt.Close()
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// middleHalf is the range from the first to the third quartile of ds.
func middleHalf(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%.1f-%.1f", ms(s[len(s)/4]), ms(s[3*len(s)/4]))
}

func meanDuration(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perContainer measures berth's memory with 10 and with 100 sleeping
// containers and reports the growth per container.
func (b *bench) perContainer(network string) error {
	ctx := context.Background()
	started := 0
	grow := func(to int) error {
		from := started
		started = to
		return parallel(to-from, 8, func(i int) error {
			cfg := container.Config{Name: fmt.Sprintf("mem%03d", from+i), Image: "busybox", Cmd: []string{"sleep", "100000"}}
			if network == "none" {
				cfg.NetworkMode = "none"
			}
			c, err := b.cc.Create(ctx, cfg)
			if err == nil {
				err = b.cc.Start(ctx, c.ID)
			}
			return err
		})
	}
	if err := grow(10); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	at10, err := b.memory()
	if err != nil {
		return err
	}
	if err := grow(100); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	at100, err := b.memory()
	if err != nil {
		return err
	}
	per := func(a, z int64) float64 { return float64(z-a) / 90 / (1 << 20) }
	fmt.Printf("container: berth's memory per running container (%s network; growth of daemon + monitor from N=10 to N=100, / 90): RSS %.3f MB, PSS %.3f MB (daemon PSS %.3f, monitor PSS %.3f); at N=100: RSS %.1f MB, PSS %.1f MB\n",
		network, per(at10.rss(), at100.rss()), per(at10.pss(), at100.pss()),
		per(at10.daemon.pss, at100.daemon.pss), per(at10.monitor.pss, at100.monitor.pss), mb(at100.rss()), mb(at100.pss()))
	return b.removeAll()
}

// logThroughput floods a container's stdout with lines 1..n and times it
// until its exit is recorded (the monitor records it once the output is
// drained), then checks every line is in its log, in order.
func (b *bench) logThroughput(n int) error {
	ctx := context.Background()
	c, err := b.cc.Create(ctx, container.Config{Name: "flood", Image: "busybox", Cmd: []string{"seq", "1", strconv.Itoa(n)}, NetworkMode: "none"})
	if err != nil {
		return err
	}
	exited, err := b.cc.WaitNextExit(ctx, c.ID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := b.cc.Start(ctx, c.ID); err != nil {
		return err
	}
	res := <-exited
	elapsed := time.Since(t0)
	if res.Err != nil || res.StatusCode != 0 {
		return fmt.Errorf("flood: exit %d %v", res.StatusCode, res.Err)
	}
	got, err := countLines(c.LogPath, n)
	if err != nil {
		return err
	}
	fmt.Printf("container: log throughput, one container flooding stdout with %d lines: %.0f lines/s (%.2f s), %d of %d lines in its log, in order\n",
		n, float64(n)/elapsed.Seconds(), elapsed.Seconds(), got, n)
	return nil
}

// countLines reads a json-file log and checks its lines are 1..n.
func countLines(path string, n int) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	next := 1
	for s.Scan() {
		var e struct{ Log string }
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return next - 1, err
		}
		if e.Log != strconv.Itoa(next)+"\n" {
			return next - 1, fmt.Errorf("line %d of the log is %q", next, e.Log)
		}
		next++
	}
	if next-1 != n {
		return next - 1, fmt.Errorf("%d lines logged, want %d", next-1, n)
	}
	return n, s.Err()
}
