package engine

import (
	"context"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
)

// The methods below are what reconcile.Engine asks for.

// ListContainers lists containers (running or not) whose labels match.
func (e *Engine) ListContainers(ctx context.Context, labels map[string]string) ([]container.Container, error) {
	return e.Containers.List(container.ListOptions{All: true, Labels: labels}), nil
}

// CreateContainer creates a container.
func (e *Engine) CreateContainer(ctx context.Context, cfg container.Config) (container.Container, error) {
	return e.Containers.Create(ctx, cfg)
}

// StartContainer starts a container.
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	return e.Containers.Start(ctx, id)
}

// StopContainer stops a container.
func (e *Engine) StopContainer(ctx context.Context, id string, timeout *time.Duration) error {
	return e.Containers.Stop(ctx, id, timeout)
}

// RemoveContainer removes a container.
func (e *Engine) RemoveContainer(ctx context.Context, id string, opts container.RemoveOptions) error {
	return e.Containers.Remove(ctx, id, opts)
}

// RenameContainer renames a container.
func (e *Engine) RenameContainer(ctx context.Context, id, name string) error {
	return e.Containers.Rename(id, name)
}

// ListNetworks lists networks whose labels match.
func (e *Engine) ListNetworks(ctx context.Context, labels map[string]string) ([]network.Network, error) {
	return e.Networks.List(labels), nil
}

// CreateNetwork creates a network and its DNS listener.
func (e *Engine) CreateNetwork(ctx context.Context, opts network.CreateOptions) (network.Network, error) {
	n, err := e.Networks.Create(opts)
	if err != nil {
		return n, err
	}
	e.listen(n)
	return n, nil
}

// RemoveNetwork removes a network and its DNS listener. The listener goes
// first: once the bridge is gone its subnet is free, and another state
// root may take it at once and need the gateway's port 53 for its own
// listener. Should the network stay (it is in use), it listens again.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	n, err := e.Networks.Get(name)
	if err != nil {
		return err
	}
	_ = e.DNS.RemoveNetwork(n.Name)
	if err := e.Networks.Remove(n.ID); err != nil {
		e.listen(n)
		return err
	}
	return nil
}

// ListVolumes lists volumes whose labels match.
func (e *Engine) ListVolumes(ctx context.Context, labels map[string]string) ([]volume.Volume, error) {
	return e.Volumes.List(labels)
}

// CreateVolume creates a volume.
func (e *Engine) CreateVolume(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error) {
	return e.Volumes.Create(opts)
}

// RemoveVolume removes a volume that no container uses.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	return e.Volumes.Remove(name, e.VolumeUsers(name), false)
}

// VolumeUsers are the names of the containers that mount the volume.
func (e *Engine) VolumeUsers(name string) []string {
	var users []string
	for _, c := range e.Containers.List(container.ListOptions{All: true}) {
		used := false
		for _, m := range c.Config.Mounts {
			if m.Type == container.MountVolume && m.Source == name {
				used = true
			}
		}
		for _, v := range c.AnonymousVolumes {
			if v == name {
				used = true
			}
		}
		if used {
			users = append(users, c.Name)
		}
	}
	return users
}

// ImageID resolves a reference to the ID of an image in the store.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.Images.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// PullImage pulls ref, reporting per-layer progress to sink.
func (e *Engine) PullImage(ctx context.Context, ref string, sink progress.Sink) error {
	_, err := e.Images.Pull(ctx, ref, image.PullOptions{Sink: func(ev image.Event) {
		progress.Emit(sink, progress.Event{
			ID: ev.ID, ParentID: "Image " + ref, Status: progress.Working, Text: ev.Status,
			Current: ev.Current, Total: ev.Total,
		})
	}})
	return err
}

// BuildImage builds a service's image (see buildimage.go).
func (e *Engine) BuildImage(ctx context.Context, p *manifest.Project, s manifest.Service, sink progress.Sink) error {
	return e.buildService(ctx, p, s, sink)
}

// RemoveImage removes an image that no container uses.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	_, err := e.Images.Remove(ctx, ref, image.RemoveOptions{})
	return err
}

// Network returns a network by name or id.
func (e *Engine) Network(ctx context.Context, name string) (network.Network, error) {
	return e.Networks.Get(name)
}
