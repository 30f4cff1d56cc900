package reconcile

import (
	"context"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
)

// Engine is what reconcile needs of berth's engine. The in-process engine
// (package engine) satisfies it in the daemon; nothing here knows which
// implementation runs.
type Engine interface {
	ListContainers(ctx context.Context, labels map[string]string) ([]container.Container, error)
	CreateContainer(ctx context.Context, cfg container.Config) (container.Container, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout *time.Duration) error
	RemoveContainer(ctx context.Context, id string, opts container.RemoveOptions) error
	RenameContainer(ctx context.Context, id, name string) error

	ListNetworks(ctx context.Context, labels map[string]string) ([]network.Network, error)
	CreateNetwork(ctx context.Context, opts network.CreateOptions) (network.Network, error)
	RemoveNetwork(ctx context.Context, name string) error

	ListVolumes(ctx context.Context, labels map[string]string) ([]volume.Volume, error)
	CreateVolume(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error)
	RemoveVolume(ctx context.Context, name string) error

	// ImageID returns the ID of the image ref names, or an errdefs
	// not-found error when it is not in the store.
	ImageID(ctx context.Context, ref string) (string, error)
	PullImage(ctx context.Context, ref string, sink progress.Sink) error
	BuildImage(ctx context.Context, p *manifest.Project, s manifest.Service, sink progress.Sink) error
	RemoveImage(ctx context.Context, ref string) error
}

// Observe reads what the engine has of project p (and the images of its
// services), for Plan.
func Observe(ctx context.Context, eng Engine, project string, p *manifest.Project) (Observed, error) {
	obs := Observed{Networks: map[string]Resource{}, Volumes: map[string]Resource{}, Images: map[string]string{}}
	sel := map[string]string{LabelProject: project}
	cs, err := eng.ListContainers(ctx, sel)
	if err != nil {
		return obs, err
	}
	for _, c := range cs {
		obs.Containers = append(obs.Containers, observedContainer(c))
	}
	nets, err := eng.ListNetworks(ctx, sel)
	if err != nil {
		return obs, err
	}
	for _, n := range nets {
		obs.Networks[n.Name] = Resource{Name: n.Name, Labels: n.Labels}
	}
	vols, err := eng.ListVolumes(ctx, sel)
	if err != nil {
		return obs, err
	}
	for _, v := range vols {
		obs.Volumes[v.Name] = Resource{Name: v.Name, Labels: v.Labels}
	}
	if p == nil {
		return obs, nil
	}
	// External networks and volumes carry no project label: look them up.
	for _, n := range p.Networks {
		if _, ok := obs.Networks[n.Name]; !ok && n.External {
			if all, err := eng.ListNetworks(ctx, nil); err == nil {
				for _, x := range all {
					if x.Name == n.Name {
						obs.Networks[n.Name] = Resource{Name: x.Name, Labels: x.Labels}
					}
				}
			}
		}
	}
	for _, v := range p.Volumes {
		if _, ok := obs.Volumes[v.Name]; !ok && v.External {
			if all, err := eng.ListVolumes(ctx, nil); err == nil {
				for _, x := range all {
					if x.Name == v.Name {
						obs.Volumes[v.Name] = Resource{Name: x.Name, Labels: x.Labels}
					}
				}
			}
		}
	}
	for _, s := range p.Services {
		if _, done := obs.Images[s.Image]; done {
			continue
		}
		if id, err := eng.ImageID(ctx, s.Image); err == nil {
			obs.Images[s.Image] = id
		}
	}
	return obs, nil
}

func observedContainer(c container.Container) Container {
	l := c.Config.Labels
	n, _ := atoi(l[LabelNumber])
	health := ""
	if c.State.Health != nil {
		health = c.State.Health.Status
	}
	return Container{
		ID: c.ID, Name: c.Name, Service: l[LabelService], Number: n, OneOff: l[LabelOneOff] == "True",
		ConfigHash: l[LabelConfigHash], Fields: decodeFields(l[LabelConfigFields]), ImageID: c.ImageID,
		State: string(c.State.Status), Health: health, ExitCode: c.State.ExitCode, Created: c.Created, Labels: l,
		StoppedByUser: c.State.StoppedByUser,
	}
}

func atoi(s string) (int, bool) {
	n := 0
	if s == "" {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, true
}
