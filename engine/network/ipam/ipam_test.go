package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/containerd/errdefs"
)

func mustConfig(t *testing.T, subnet, gw, rng string, aux map[string]string) Config {
	t.Helper()
	c, err := ParseConfig(subnet, gw, rng, aux)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.Complete()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChooseSkipsTakenPrefixesAndDockerDefaults(t *testing.T) {
	pools := []Pool{{Base: netip.MustParsePrefix("10.210.0.0/23"), Size: 24}}
	got, err := Choose(pools, nil)
	if err != nil || got.String() != "10.210.0.0/24" {
		t.Fatalf("first subnet = %v, %v", got, err)
	}
	// A host route inside the first candidate pushes the choice on.
	got, err = Choose(pools, []netip.Prefix{netip.MustParsePrefix("10.210.0.128/25")})
	if err != nil || got.String() != "10.210.1.0/24" {
		t.Fatalf("with 10.210.0.128/25 taken = %v, %v", got, err)
	}
	// A default route (prefix length 0) overlaps everything and must not count.
	got, err = Choose(pools, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")})
	if err != nil || got.String() != "10.210.0.0/24" {
		t.Fatalf("with a default route = %v, %v", got, err)
	}
	// A covering route (10.0.0.0/8 towards a VPN, say) exhausts the pool.
	_, err = Choose(pools, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("exhausted pool: %v", err)
	}
	// A pool laid over Docker's ranges never returns one of them.
	wide := []Pool{{Base: netip.MustParsePrefix("172.16.0.0/12"), Size: 16}}
	got, err = Choose(wide, nil)
	if err != nil || got.String() != "172.16.0.0/16" {
		t.Fatalf("first of 172.16/12 = %v, %v", got, err)
	}
	got, err = Choose(wide, []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("172.17-31 are Docker's: got %v, %v", got, err)
	}
}

func TestDefaultPoolsAvoidDocker(t *testing.T) {
	for _, p := range DefaultPools() {
		for _, d := range DockerDefaultPools() {
			if p.Base.Overlaps(d) {
				t.Errorf("default pool %s overlaps Docker's %s", p.Base, d)
			}
		}
	}
}

func TestConfigChecks(t *testing.T) {
	cases := []struct {
		subnet, gw, rng string
		aux             map[string]string
		want            error
	}{
		{"10.1.0.0/24", "", "", nil, nil},
		{"10.1.0.5/24", "", "", nil, errdefs.ErrInvalidArgument},
		{"10.1.0.0/31", "", "", nil, errdefs.ErrInvalidArgument},
		{"fd00::/64", "", "", nil, errdefs.ErrNotImplemented},
		{"10.1.0.0/24", "10.2.0.1", "", nil, errdefs.ErrInvalidArgument},
		{"10.1.0.0/24", "10.1.0.255", "", nil, errdefs.ErrInvalidArgument},
		{"10.1.0.0/24", "", "10.1.1.0/28", nil, errdefs.ErrInvalidArgument},
		{"10.1.0.0/24", "", "10.1.0.0/16", nil, errdefs.ErrInvalidArgument},
		{"10.1.0.0/24", "", "10.1.0.16/28", map[string]string{"r": "10.9.0.1"}, errdefs.ErrInvalidArgument},
		{"", "10.1.0.1", "", nil, errdefs.ErrInvalidArgument},
		{"nonsense", "", "", nil, errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		cfg, err := ParseConfig(c.subnet, c.gw, c.rng, c.aux)
		if err == nil && cfg.Subnet.IsValid() {
			_, err = cfg.Complete()
		}
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%q gw %q range %q aux %v: got %v, want %v", c.subnet, c.gw, c.rng, c.aux, err, c.want)
		}
	}
}

func TestAllocateRespectsRangeGatewayAndAux(t *testing.T) {
	c := mustConfig(t, "10.1.0.0/24", "", "10.1.0.16/29", map[string]string{"router": "10.1.0.18"})
	if c.Gateway.String() != "10.1.0.1" {
		t.Fatalf("default gateway %s", c.Gateway)
	}
	s := NewSpace(c)
	var got []string
	for {
		a, err := s.Allocate("x")
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatal(err)
			}
			break
		}
		got = append(got, a.String())
	}
	want := []string{"10.1.0.16", "10.1.0.17", "10.1.0.19", "10.1.0.20", "10.1.0.21", "10.1.0.22", "10.1.0.23"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	// A static address may sit outside ip_range but not on reserved ones.
	if err := s.Claim(netip.MustParseAddr("10.1.0.100"), "static"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.1.0.1", "10.1.0.18", "10.1.0.16", "10.1.0.0", "10.1.0.255", "10.2.0.3"} {
		if err := s.Claim(netip.MustParseAddr(bad), "other"); err == nil {
			t.Errorf("claim of %s succeeded", bad)
		}
	}
}

func TestAllocateRoundRobinAfterRelease(t *testing.T) {
	s := NewSpace(mustConfig(t, "10.1.0.0/29", "", "", nil))
	a, _ := s.Allocate("a") // .2
	b, _ := s.Allocate("b") // .3
	s.Release(a)
	c, _ := s.Allocate("c")
	if c == a || c.String() != "10.1.0.4" {
		t.Fatalf("after releasing %s got %s, want the next one (10.1.0.4)", a, c)
	}
	if o, _ := s.Owner(b); o != "b" {
		t.Fatalf("owner of %s = %q", b, o)
	}
	// .5, .6, then wrap to the released .2.
	s.Allocate("d")
	s.Allocate("e")
	f, err := s.Allocate("f")
	if err != nil || f != a {
		t.Fatalf("wrap-around got %s, %v; want %s", f, err, a)
	}
	if _, err := s.Allocate("g"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("full space: %v", err)
	}
}
