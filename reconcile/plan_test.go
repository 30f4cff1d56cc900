package reconcile

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/manifest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func load(t *testing.T, file string, edit func(*manifest.Project)) *manifest.Project {
	t.Helper()
	p, err := manifest.Load(context.Background(), manifest.Options{
		Files: []string{filepath.Join("..", "testdata", "reconcile", file)}, Environ: []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(p)
		for name, s := range p.Services {
			s.ConfigHash = manifest.ConfigHash(s)
			p.Services[name] = s
		}
	}
	return p
}

// converged is what the engine reports once p is up: every replica running
// with its current hash, every network, volume and image present.
func converged(p *manifest.Project) Observed {
	obs := Observed{Networks: map[string]Resource{}, Volumes: map[string]Resource{}, Images: map[string]string{}}
	for _, n := range p.Networks {
		obs.Networks[n.Name] = Resource{Name: n.Name}
	}
	for _, v := range p.Volumes {
		obs.Volumes[v.Name] = Resource{Name: v.Name}
	}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		obs.Images[s.Image] = "sha256:" + s.Image
		for n := 1; n <= s.Replicas; n++ {
			obs.Containers = append(obs.Containers, Container{
				ID: p.ContainerName(name, n) + "-id", Name: p.ContainerName(name, n), Service: name, Number: n,
				ConfigHash: s.ConfigHash, Fields: FieldHashes(s), ImageID: "sha256:" + s.Image, State: "running",
			})
		}
	}
	return obs
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("..", "testdata", "reconcile", name+".golden"), []byte(got), *update)
}

func TestPlanUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*manifest.Project) // applied to the desired project
		obs  func(p *manifest.Project) Observed
		opts Options
	}{
		{name: "cold", obs: func(*manifest.Project) Observed { return Observed{} }},
		{name: "noop", obs: converged},
		{
			name: "edit-one-service",
			edit: func(p *manifest.Project) {
				s := p.Services["worker"]
				s.Environment = map[string]string{"MODE": "fast"}
				p.Services["worker"] = s
			},
			obs: func(p *manifest.Project) Observed { return converged(load(t, "app.yaml", nil)) },
		},
		{
			name: "recreated-dependency-restarts-dependents",
			edit: func(p *manifest.Project) {
				s := p.Services["db"]
				s.Command = []string{"sleep", "2000"}
				p.Services["db"] = s
			},
			obs: func(p *manifest.Project) Observed { return converged(load(t, "app.yaml", nil)) },
		},
		{
			name: "scale-up-and-down",
			edit: func(p *manifest.Project) {
				_ = p.Scale("web", 3)
				_ = p.Scale("worker", 0)
			},
			obs: func(p *manifest.Project) Observed { return converged(load(t, "app.yaml", nil)) },
		},
		{
			name: "scale-down-removes-highest-first",
			edit: func(p *manifest.Project) { _ = p.Scale("web", 1) },
			obs: func(p *manifest.Project) Observed {
				q := load(t, "app.yaml", nil)
				_ = q.Scale("web", 4)
				return converged(q)
			},
		},
		{
			name: "stopped-container-is-started",
			obs: func(p *manifest.Project) Observed {
				obs := converged(p)
				obs.Containers[0].State = "exited"
				return obs
			},
		},
		{
			name: "image-changed",
			obs: func(p *manifest.Project) Observed {
				obs := converged(p)
				obs.Images["busybox"] = "sha256:newer"
				return obs
			},
		},
		{
			name: "orphans-warned",
			obs: func(p *manifest.Project) Observed {
				obs := converged(p)
				obs.Containers = append(obs.Containers, Container{ID: "x", Name: "app-old-1", Service: "old", Number: 1, State: "running"})
				return obs
			},
		},
		{
			name: "orphans-removed",
			obs: func(p *manifest.Project) Observed {
				obs := converged(p)
				obs.Containers = append(obs.Containers, Container{ID: "x", Name: "app-old-1", Service: "old", Number: 1, State: "running"})
				return obs
			},
			opts: Options{RemoveOrphans: true},
		},
		{name: "force-recreate-one-service-no-deps", obs: converged, opts: Options{Services: []string{"web"}, NoDeps: true, ForceRecreate: true}},
		// As docker compose's: --force-recreate and -V recreate the services
		// named (all when none is), --always-recreate-deps what they need.
		{name: "force-recreate-one-service", obs: converged, opts: Options{Services: []string{"web"}, ForceRecreate: true}},
		{name: "always-recreate-deps", obs: converged, opts: Options{Services: []string{"web"}, AlwaysRecreateDeps: true}},
		{name: "renew-anon-volumes", obs: converged, opts: Options{RenewAnonVolumes: true}},
		{name: "build-always", obs: converged, opts: Options{Build: BuildAlways, Services: []string{"web"}}},
		{name: "no-start", obs: func(*manifest.Project) Observed { return Observed{} }, opts: Options{NoStart: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, "app.yaml", tc.edit)
			plan, err := PlanUp(p, tc.obs(p), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "up-"+tc.name, plan.String())
		})
	}
}

// TestSharedBuiltImageIsNotPulled guards services that run an image
// another service builds: they wait for the build instead of pulling.
func TestSharedBuiltImageIsNotPulled(t *testing.T) {
	p := load(t, "shared-image.yaml", nil)
	plan, err := PlanUp(p, Observed{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "up-shared-built-image", plan.String())
}

func TestPlanUpConvergedIsEmpty(t *testing.T) {
	p := load(t, "app.yaml", nil)
	plan, err := PlanUp(p, converged(p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Empty() {
		t.Fatalf("a converged project plans work:\n%s", plan)
	}
}

func TestPlanUpMissingExternalNetworkIsAnError(t *testing.T) {
	p := load(t, "app.yaml", nil)
	n := p.Networks["default"]
	n.External = true
	p.Networks["default"] = n
	if _, err := PlanUp(p, Observed{}, Options{}); err == nil || !strings.Contains(err.Error(), "declared as external") {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanDown(t *testing.T) {
	p := load(t, "app.yaml", nil)
	obs := converged(p)
	obs.Containers = append(obs.Containers, Container{ID: "x", Name: "app-old-1", Service: "old", Number: 1, State: "running"})
	golden(t, "down", PlanDown("app", p, obs, DownOptions{}).String())
	golden(t, "down-volumes-orphans-rmi", PlanDown("app", p, obs, DownOptions{Volumes: true, RemoveOrphans: true, Images: "local"}).String())
	// Without files the labels give the order.
	for i := range obs.Containers {
		if obs.Containers[i].Service == "web" || obs.Containers[i].Service == "worker" {
			obs.Containers[i].Labels = map[string]string{LabelDependsOn: "db:service_healthy:false"}
		}
	}
	golden(t, "down-from-labels", PlanDown("app", nil, obs, DownOptions{}).String())
}
