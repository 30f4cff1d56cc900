// Command netbench measures engine/network for `make bench`
// (hack/bench/network.sh): HTTP throughput with wrk and keep-alive through a
// published port against straight to the container's address, on 127.0.0.1
// and on the host's own address, and the time to make a sandbox, attach it
// to a network and delete it. It needs root and wrk; it prints figures and
// asserts nothing.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/engine/network"
)

func main() {
	duration := flag.Duration("d", 3*time.Second, "wrk duration per run")
	conns := flag.Int("c", 32, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads")
	rounds := flag.Int("rounds", 7, "interleaved runs per path (the median is reported: the machine is shared)")
	attaches := flag.Int("attaches", 50, "sandboxes made and attached for the timing")
	flag.Parse()
	if err := run(*duration, *conns, *threads, *rounds, *attaches); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, conns, threads, rounds, attaches int) error {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return fmt.Errorf("wrk is needed (Debian package wrk): %w", err)
	}
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	m, err := network.Open(filepath.Join(root, "network"), network.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	n, err := m.Create(network.CreateOptions{Name: "bench"})
	if err != nil {
		return err
	}
	defer m.Remove(n.ID)
	web, err := m.CreateSandbox(network.SandboxOptions{Owner: "bench web", Ports: []network.PortMapping{{ContainerPort: 8080}}})
	if err != nil {
		return err
	}
	defer m.DeleteSandbox(web.ID)
	ep, err := m.Attach(web.ID, n.Name, network.AttachOptions{})
	if err != nil {
		return err
	}
	stop, err := serveHTTP(web.Path, 8080)
	if err != nil {
		return err
	}
	defer stop()
	hp := web.Ports[0].HostPort

	fmt.Printf("network: subnet %s, MTU %d, container %s, published host port %d\n", n.Subnet, n.MTU, ep.IP(), hp)
	fmt.Printf("network: wrk -t%d -c%d -d%s (keep-alive), %d interleaved rounds; medians, and medians of the per-round ratios\n", threads, conns, duration, rounds)
	paths := []struct{ name, url string }{
		{"direct to the container", fmt.Sprintf("http://%s/", netip.AddrPortFrom(ep.IP(), 8080))},
		{"published on 127.0.0.1", fmt.Sprintf("http://127.0.0.1:%d/", hp)},
	}
	if host, ok := network.HostAddress(); ok {
		paths = append(paths, struct{ name, url string }{"published on the host address " + host.String(), fmt.Sprintf("http://%s/", netip.AddrPortFrom(host, hp))})
	}
	results := make([][]float64, len(paths))
	costs := make([][]float64, len(paths))
	for r := 0; r < rounds; r++ {
		for i, p := range paths {
			run, err := runWrk(wrk, p.url, duration, conns, threads)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			results[i] = append(results[i], run.rps)
			costs[i] = append(costs[i], run.cpuPerRequest)
		}
	}
	for i, p := range paths {
		// Ratios are taken run by run against the direct run of the same
		// round, then their median: the machine's load drifts between
		// rounds more than within one.
		var ratios, cpuRatios []float64
		for r := range results[i] {
			ratios = append(ratios, results[i][r]/results[0][r])
			cpuRatios = append(cpuRatios, costs[0][r]/costs[i][r])
		}
		lo, hi := slices.Min(results[i]), slices.Max(results[i])
		fmt.Printf("network: %-44s %7.0f req/s %6.1f%% of direct (runs %.0f-%.0f); %5.1f µs CPU/req, %5.1f%% of direct at equal CPU\n",
			p.name, median(results[i]), 100*median(ratios), lo, hi, median(costs[i])*1e6, 100*median(cpuRatios))
	}
	fmt.Println("network: (CPU/req: wrk's and the server's user+system time, where the kernel's packet work is charged, per request;")
	fmt.Println("network:  on a shared machine it is steadier than req/s, which the other processes' load moves)")
	return timeAttach(m, n.Name, attaches)
}

// serveHTTP serves a two-byte answer on port inside the namespace at path:
// the listening socket is made on a thread inside it, then served from
// anywhere.
func serveHTTP(path string, port int) (func(), error) {
	var l net.Listener
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		ns, err := netns.GetFromPath(path)
		if err == nil {
			err = netns.Set(ns)
			ns.Close()
		}
		if err == nil {
			l, err = net.Listen("tcp4", ":"+strconv.Itoa(port))
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok"))
	})}
	go srv.Serve(l)
	return func() { srv.Close() }, nil
}

var (
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	requestsLine = regexp.MustCompile(`([0-9]+) requests in`)
	errorsLine   = regexp.MustCompile(`Non-2xx|Socket errors`)
)

type wrkRun struct {
	rps           float64
	cpuPerRequest float64 // seconds
}

// runWrk runs wrk against url and returns its rate and the CPU time that
// wrk and this process (the server) spent per request.
func runWrk(wrk, url string, d time.Duration, conns, threads int) (wrkRun, error) {
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return wrkRun{}, err
	}
	cmd := exec.Command(wrk, "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkRun{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		return wrkRun{}, err
	}
	rps, reqs := rpsLine.FindSubmatch(out), requestsLine.FindSubmatch(out)
	if rps == nil || reqs == nil {
		return wrkRun{}, fmt.Errorf("wrk printed no Requests/sec: %s", out)
	}
	if errorsLine.Match(out) {
		return wrkRun{}, fmt.Errorf("wrk saw errors: %s", out)
	}
	var run wrkRun
	run.rps, _ = strconv.ParseFloat(string(rps[1]), 64)
	n, _ := strconv.ParseFloat(string(reqs[1]), 64)
	wrkUsage := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cpuTime(wrkUsage) + cpuTime(&after) - cpuTime(&before)
	if n > 0 {
		run.cpuPerRequest = cpu.Seconds() / n
	}
	return run, nil
}

func cpuTime(r *syscall.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

func timeAttach(m *network.Manager, net string, count int) error {
	var create, attach, del []time.Duration
	for i := 0; i < count; i++ {
		t0 := time.Now()
		sb, err := m.CreateSandbox(network.SandboxOptions{Owner: fmt.Sprintf("bench %d", i)})
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := m.Attach(sb.ID, net, network.AttachOptions{}); err != nil {
			return err
		}
		t2 := time.Now()
		if err := m.DeleteSandbox(sb.ID); err != nil {
			return err
		}
		t3 := time.Now()
		create, attach, del = append(create, t1.Sub(t0)), append(attach, t2.Sub(t1)), append(del, t3.Sub(t2))
	}
	both := make([]time.Duration, count)
	for i := range both {
		both[i] = create[i] + attach[i]
	}
	fmt.Printf("network: %d sandboxes, median (p90):\n", count)
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"create sandbox (netns, lo up)", create}, {"attach (veth, address, route)", attach},
		{"sandbox ready on a network (both)", both}, {"delete sandbox", del}} {
		fmt.Printf("network:   %-36s %8s (%s)\n", s.name, pct(s.d, 50), pct(s.d, 90))
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100].Round(10 * time.Microsecond)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
