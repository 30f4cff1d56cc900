package network

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/network")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "network", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(got) != string(want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("%s line %d:\n got %q\nwant %q", path, i+1, g, w)
			}
		}
	}
}

func TestHostsFileAndResolvConf(t *testing.T) {
	hosts, err := HostsFile(HostsOptions{
		Hostname: "web", Domainname: "example.test",
		Addresses: []netip.Addr{netip.MustParseAddr("10.210.0.2"), netip.MustParseAddr("10.210.1.2")},
		ExtraHosts: []ExtraHost{
			{Name: "db.internal", IP: "10.0.0.5"},
			{Name: "host.docker.internal", IP: HostGateway},
			{Name: "v6", IP: "[fd00::1]"},
		},
		HostGatewayIP: netip.MustParseAddr("10.210.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "hosts", hosts)
	golden(t, "resolv.conf", ResolvConf([]netip.Addr{netip.MustParseAddr("10.210.0.1")}, []string{"example.test"}, []string{"ndots:1"}))

	if _, err := HostsFile(HostsOptions{ExtraHosts: []ExtraHost{{Name: "h", IP: HostGateway}}}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("host-gateway without a gateway: %v", err)
	}
	if _, err := HostsFile(HostsOptions{ExtraHosts: []ExtraHost{{Name: "h", IP: "nope"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("extra host with a bad address: %v", err)
	}
	none, _ := HostsFile(HostsOptions{Hostname: "solo"})
	if !strings.HasSuffix(string(none), "127.0.0.1\tsolo\n") {
		t.Errorf("hostname without addresses:\n%s", none)
	}
}
