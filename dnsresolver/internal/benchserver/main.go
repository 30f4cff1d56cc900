// Command benchserver runs one dnsresolver listener with a Compose-sized set
// of records and a local upstream, for hack/bench/dns.sh to load with dnsperf.
// It writes the query files dnsperf reads, prints "ready" once the listener
// answers, and serves until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/dnsresolver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run() error {
	gateway := flag.String("gateway", "127.0.0.153", "address of the listener (port 53)")
	services := flag.Int("services", 20, "services on the network")
	replicas := flag.Int("replicas", 3, "replicas per service")
	queries := flag.String("queries", "", "directory to write local.txt and upstream.txt (dnsperf query files) into")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	sockets := flag.Int("sockets", 0, "UDP sockets (readers) of the listener; 0: one per CPU")
	flag.Parse()

	gw, err := netip.ParseAddr(*gateway)
	if err != nil {
		return err
	}
	up, err := startUpstream()
	if err != nil {
		return err
	}
	s := dnsresolver.New(dnsresolver.Config{Upstreams: []netip.AddrPort{up}, Sockets: *sockets})
	defer s.Close()
	sub := netip.PrefixFrom(gw, 8).Masked()
	if err := s.AddNetwork(dnsresolver.Network{Name: "bench_default", Gateway: gw, Subnet: sub}); err != nil {
		return err
	}
	var eps []dnsresolver.Endpoint
	var local []string
	ip := netip.AddrFrom4([4]byte{10, 99, 0, 10})
	for i := range *services {
		svc := fmt.Sprintf("svc%d", i)
		local = append(local, svc+" A")
		for r := 1; r <= *replicas; r++ {
			name := fmt.Sprintf("bench-%s-%d", svc, r)
			eps = append(eps, dnsresolver.Endpoint{Container: name, IP: ip, Service: svc, Hostname: fmt.Sprintf("h%d-%d", i, r)})
			local = append(local, name+" A")
			ip = ip.Next()
		}
	}
	if err := s.SetEndpoints("bench_default", eps); err != nil {
		return err
	}
	if *queries != "" {
		var upstream []string
		for i := range 100 {
			upstream = append(upstream, fmt.Sprintf("host%d.upstream.test A", i))
		}
		if err := os.WriteFile(filepath.Join(*queries, "local.txt"), []byte(strings.Join(local, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*queries, "upstream.txt"), []byte(strings.Join(upstream, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Ready means answering: ask once, as a client would.
	q := new(dns.Msg)
	q.SetQuestion("svc0.", dns.TypeA)
	if _, _, err := new(dns.Client).Exchange(q, netip.AddrPortFrom(gw, dnsresolver.DefaultPort).String()); err != nil {
		return fmt.Errorf("listener does not answer: %w", err)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// startUpstream serves A 192.0.2.1 for every name on 127.0.0.1 (UDP): the
// host resolver that forwarded names reach.
func startUpstream() (netip.AddrPort, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(192, 0, 2, 1),
			})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	return netip.MustParseAddrPort(pc.LocalAddr().String()), nil
}
