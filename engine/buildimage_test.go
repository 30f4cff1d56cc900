package engine_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/manifest"
)

func TestServiceBuildOptionsAsDockerComposeHasThem(t *testing.T) {
	p := &manifest.Project{Name: "shop"}
	s := manifest.Service{Name: "web", Image: "shop-web", Build: &manifest.Build{
		Context: "/src/web", Dockerfile: "Dockerfile.prod", Args: map[string]string{"V": "1"}, Target: "final",
		Labels: map[string]string{"team": "a"}, Tags: []string{"registry.local/web:1"}, NoCache: true, Pull: true, Network: "none",
	}}
	o, err := engine.ServiceBuildOptions(p, s)
	if err != nil {
		t.Fatal(err)
	}
	if o.Context != "/src/web" || o.Dockerfile != "Dockerfile.prod" || o.Target != "final" || !o.NoCache || !o.Pull || o.Network != "none" || o.Name != "web" {
		t.Errorf("options %+v", o)
	}
	if !slices.Equal(o.Tags, []string{"shop-web", "registry.local/web:1"}) {
		t.Errorf("tags %v", o.Tags)
	}
	if o.Labels["com.docker.compose.project"] != "shop" || o.Labels["com.docker.compose.service"] != "web" || o.Labels["team"] != "a" {
		t.Errorf("labels %v", o.Labels)
	}
	if s.Build.Labels["com.docker.compose.project"] != "" {
		t.Error("the service's own labels were changed")
	}
	for _, b := range []manifest.Build{
		{Context: "https://github.com/x/y.git"},
		{Context: "/src", Platforms: []string{"linux/s390x"}},
		{Context: "/src", AdditionalContexts: map[string]string{"x": "service:db"}},
		{Context: "/src", AdditionalContexts: map[string]string{"x": "https://example.test/x.tar"}},
	} {
		s.Build = &b
		if _, err := engine.ServiceBuildOptions(p, s); !errdefs.IsNotImplemented(err) {
			t.Errorf("build %+v: %v", b, err)
		}
	}
}

func TestAdditionalContextsBecomeNamedContexts(t *testing.T) {
	p := &manifest.Project{Name: "shop"}
	s := manifest.Service{Name: "web", Image: "shop-web", Build: &manifest.Build{
		Context: "/src/web",
		AdditionalContexts: map[string]string{
			"assets": "/src/assets", "docs": "../docs", "base": "docker-image://busybox:1.36",
		},
	}}
	o, err := engine.ServiceBuildOptions(p, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"assets": "/src/assets", "docs": "/src/docs", "base": "docker-image://busybox:1.36"}
	if !maps.Equal(o.NamedContexts, want) {
		t.Errorf("named contexts %v, want %v", o.NamedContexts, want)
	}
}
