package main

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/internal/testutil"
)

var addressLine = regexp.MustCompile(`(?m)^Address:\s+(\d+\.\d+\.\d+\.\d+)$`)

// lookup runs busybox nslookup for name in service's container and
// returns the addresses it printed (the server's own line left out), in
// the order given.
func (p *project) lookup(t *testing.T, service, name string) ([]string, string) {
	t.Helper()
	out, _, _ := p.berthErr("exec", "-T", service, "nslookup", name)
	var addrs []string
	for _, m := range addressLine.FindAllStringSubmatch(out, -1) {
		addrs = append(addrs, m[1])
	}
	// The first Address line is the server's (the gateway, port 53).
	if i := strings.Index(out, "Name:"); i >= 0 {
		addrs = nil
		for _, m := range addressLine.FindAllStringSubmatch(out[i:], -1) {
			addrs = append(addrs, m[1])
		}
	}
	return addrs, out
}

// startUpstream runs a DNS server on loopback that answers
// upstream.berth.test with 10.77.0.7 and counts the queries it gets.
func startUpstream(t *testing.T) (port int, queries *int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n++
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Name == "upstream.berth.test." && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("upstream.berth.test. 5 IN A 10.77.0.7")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().(*net.UDPAddr).Port, &n
}

func TestDNSFromInsideContainers(t *testing.T) {
	p := newProject(t, "dns", "dnse2e")
	p.importBusybox()
	port, _ := startUpstream(t)
	t.Setenv("UPSTREAM_PORT", strconv.Itoa(port))
	p.berth("up", "-d")

	// A service name: every replica, in an order that rotates.
	first, out := p.lookup(t, "other", "web")
	if len(first) != 3 {
		t.Fatalf("web resolved to %v, want three replicas:\n%s", first, out)
	}
	rotated := false
	for range 6 {
		next, _ := p.lookup(t, "other", "web")
		if len(next) == 3 && next[0] != first[0] {
			rotated = true
			break
		}
	}
	if !rotated {
		t.Errorf("six lookups of web all began with %s: no round robin", first[0])
	}

	// A network alias, and the replicas' container names.
	if www, out := p.lookup(t, "other", "www"); len(www) != 3 {
		t.Errorf("alias www: %v\n%s", www, out)
	}
	if one, out := p.lookup(t, "other", "dnse2e-web-2"); len(one) != 1 {
		t.Errorf("container name: %v\n%s", one, out)
	}

	// A link alias: the linking container resolves it, others do not.
	if site, out := p.lookup(t, "linker", "site"); len(site) == 0 {
		t.Errorf("the linking container cannot resolve its link alias:\n%s", out)
	}
	if site, _ := p.lookup(t, "other", "site"); len(site) != 0 {
		t.Errorf("another container resolves the link alias site: %v", site)
	}

	// Isolation: a container on another network sees none of front's names.
	if web, _ := p.lookup(t, "isolated", "web"); len(web) != 0 {
		t.Errorf("a container on back resolves web: %v", web)
	}

	// Forwarding: other names go to the container's upstream (dns:).
	if up, out := p.lookup(t, "linker", "upstream.berth.test"); len(up) != 1 || up[0] != "10.77.0.7" {
		t.Errorf("upstream.berth.test: %v\n%s", up, out)
	}

	// Records follow scale down and up.
	p.berth("up", "-d", "--scale", "web=1")
	testutil.Eventually(t, 10*time.Second, func() error {
		if got, _ := p.lookup(t, "other", "web"); len(got) != 1 {
			return fmt.Errorf("after scale 1, web is %v", got)
		}
		return nil
	})
	p.berth("up", "-d", "--scale", "web=4")
	testutil.Eventually(t, 10*time.Second, func() error {
		if got, _ := p.lookup(t, "other", "web"); len(got) != 4 {
			return fmt.Errorf("after scale 4, web is %v", got)
		}
		return nil
	})
}
