package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
)

// ApplyOptions are how a plan is carried out.
type ApplyOptions struct {
	// Timeout is the stop grace (-t) instead of each service's own.
	Timeout *time.Duration
	// RemoveVolumes also removes removed containers' anonymous volumes.
	RemoveVolumes bool
	Sink          progress.Sink
	// PollInterval is how often dependency conditions are checked.
	PollInterval time.Duration
}

// Apply carries out plan against eng: every action once the actions it
// waits for are done, independent actions in parallel. An action whose
// dependency failed fails too; the others go on. The returned error joins
// every failure, each naming its resource.
func Apply(ctx context.Context, eng Engine, p *manifest.Project, plan Plan, opts ApplyOptions) error {
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	for _, name := range plan.Converged {
		progress.Emit(opts.Sink, progress.DoneEvent("Container "+name, "Running"))
	}
	for _, w := range plan.Warnings {
		progress.Emit(opts.Sink, progress.Event{ID: "Warning", Status: progress.Warning, Text: w})
	}
	n := len(plan.Actions)
	done := make([]chan struct{}, n)
	errs := make([]error, n)
	byResource := map[string][]int{}
	byService := map[string][]int{}
	for i, a := range plan.Actions {
		done[i] = make(chan struct{})
		byResource[a.Resource] = append(byResource[a.Resource], i)
		// "service:NAME" waits for the service's containers and its image.
		if a.Service != "" && (strings.HasPrefix(a.Resource, "service:") || strings.HasPrefix(a.Resource, "image:")) {
			byService[a.Service] = append(byService[a.Service], i)
		}
	}
	a := &applier{eng: eng, p: p, opts: opts}
	var wg sync.WaitGroup
	for i := range plan.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			act := plan.Actions[i]
			if err := a.waitFor(ctx, act, byResource, byService, done, errs); err != nil {
				errs[i] = err
				a.failed(act, err)
				return
			}
			if err := a.run(ctx, act); err != nil {
				errs[i] = fmt.Errorf("%s %s: %w", act.Kind, act.Name, err)
				a.failed(act, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

type applier struct {
	eng  Engine
	p    *manifest.Project
	opts ApplyOptions
}

func (a *applier) emit(e progress.Event) { progress.Emit(a.opts.Sink, e) }

func (a *applier) failed(act Action, err error) {
	a.emit(progress.ErrorEvent(eventID(act), err))
}

// eventID names an action's resource as docker compose's progress does.
func eventID(act Action) string {
	switch act.Kind {
	case CreateNetwork, RemoveNetwork:
		return "Network " + act.Name
	case CreateVolume, RemoveVolume:
		return "Volume " + act.Name
	case PullImage, BuildImage, RemoveImage:
		return "Image " + act.Name
	}
	return "Container " + act.Name
}

// waitFor blocks until everything act comes after is done, and for a
// "service:NAME" dependency until its depends_on condition holds.
func (a *applier) waitFor(ctx context.Context, act Action, byResource, byService map[string][]int, done []chan struct{}, errs []error) error {
	for _, dep := range act.After {
		idx := byResource[dep]
		svc, isService := strings.CutPrefix(dep, "service:")
		if isService {
			idx = byService[svc]
		}
		for _, j := range idx {
			select {
			case <-done[j]:
			case <-ctx.Done():
				return ctx.Err()
			}
			if errs[j] != nil {
				return fmt.Errorf("%s %s: dependency %s failed", act.Kind, act.Name, dep)
			}
		}
		if isService && a.p != nil {
			s := a.p.Services[act.Service]
			d := s.DependsOn[svc]
			if err := a.waitCondition(ctx, act, svc, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitCondition waits until service dep satisfies d.Condition.
func (a *applier) waitCondition(ctx context.Context, act Action, dep string, d manifest.Dependency) error {
	sel := map[string]string{LabelProject: a.p.Name, LabelService: dep, LabelOneOff: "False"}
	waiting := false
	for {
		cs, err := a.eng.ListContainers(ctx, sel)
		if err != nil {
			return err
		}
		ok, err := conditionHolds(dep, d.Condition, cs)
		if err != nil {
			if !d.Required {
				return nil
			}
			return fmt.Errorf("dependency failed to start: %w", err)
		}
		if ok {
			if waiting {
				for _, c := range cs {
					a.emit(progress.DoneEvent("Container "+c.Name, conditionText(d.Condition)))
				}
			}
			return nil
		}
		if len(cs) == 0 && !d.Required {
			return nil
		}
		if !waiting {
			waiting = true
			for _, c := range cs {
				a.emit(progress.WorkingEvent("Container "+c.Name, "Waiting"))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.opts.PollInterval):
		}
	}
}

func conditionText(cond string) string {
	switch cond {
	case manifest.ConditionHealthy:
		return "Healthy"
	case manifest.ConditionCompleted:
		return "Exited"
	}
	return "Started"
}

// conditionHolds reports whether a dependency's containers meet the
// condition; an error means they never will.
func conditionHolds(service, cond string, cs []container.Container) (bool, error) {
	if len(cs) == 0 {
		return false, nil
	}
	for _, c := range cs {
		st := c.State
		switch cond {
		case manifest.ConditionHealthy:
			if st.Health == nil {
				if st.Status == container.Running {
					return false, fmt.Errorf("container %s has no healthcheck configured", c.Name)
				}
				return false, fmt.Errorf("container %s is %s", c.Name, st.Status)
			}
			switch st.Health.Status {
			case "healthy":
				continue
			case "unhealthy":
				return false, fmt.Errorf("container %s is unhealthy", c.Name)
			}
			if st.Status == container.Exited {
				return false, fmt.Errorf("container %s exited (%d)", c.Name, st.ExitCode)
			}
			return false, nil
		case manifest.ConditionCompleted:
			switch st.Status {
			case container.Exited:
				if st.ExitCode != 0 {
					return false, fmt.Errorf("service %q didn't complete successfully: exit %d", service, st.ExitCode)
				}
			case container.Created:
				return false, nil
			default:
				return false, nil
			}
		default: // service_started
			if st.Status == container.Created {
				return false, nil
			}
		}
	}
	return true, nil
}

// run carries out one action.
func (a *applier) run(ctx context.Context, act Action) error {
	id := eventID(act)
	switch act.Kind {
	case CreateNetwork:
		a.emit(progress.WorkingEvent(id, "Creating"))
		n, ok := networkByName(a.p, act.Name)
		if !ok {
			return fmt.Errorf("network %s is not in the project", act.Name)
		}
		if _, err := a.eng.CreateNetwork(ctx, networkOptions(a.p, n)); err != nil && !errdefs.IsAlreadyExists(err) {
			return err
		}
		a.emit(progress.DoneEvent(id, "Created"))
	case CreateVolume:
		a.emit(progress.WorkingEvent(id, "Creating"))
		v, ok := volumeByName(a.p, act.Name)
		if !ok {
			return fmt.Errorf("volume %s is not in the project", act.Name)
		}
		labels := map[string]string{LabelProject: a.p.Name, LabelVolume: v.Key, LabelVersion: Version}
		for k, val := range v.Labels {
			labels[k] = val
		}
		if _, err := a.eng.CreateVolume(ctx, volume.CreateOptions{Name: v.Name, Driver: v.Driver, Labels: labels, Options: v.DriverOpts}); err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Created"))
	case PullImage:
		a.emit(progress.WorkingEvent(id, "Pulling"))
		if err := a.eng.PullImage(ctx, act.Name, a.opts.Sink); err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Pulled"))
	case BuildImage:
		a.emit(progress.WorkingEvent(id, "Building"))
		if err := a.eng.BuildImage(ctx, a.p, a.p.Services[act.Service], a.opts.Sink); err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Built"))
	case CreateContainer:
		a.emit(progress.WorkingEvent(id, "Creating"))
		c, err := a.create(ctx, act, nil)
		if err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Created"))
		if act.Start {
			return a.start(ctx, id, c.ID)
		}
	case StartContainer:
		return a.start(ctx, id, act.Container.ID)
	case RestartContainer:
		a.emit(progress.WorkingEvent(id, "Restarting"))
		if err := a.eng.StopContainer(ctx, act.Container.ID, a.timeout(act.Service)); err != nil {
			return err
		}
		if err := a.eng.StartContainer(ctx, act.Container.ID); err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Restarted"))
	case RecreateContainer:
		return a.recreate(ctx, id, act)
	case StopContainer:
		a.emit(progress.WorkingEvent(id, "Stopping"))
		if err := a.eng.StopContainer(ctx, act.Container.ID, a.timeout(act.Service)); err != nil {
			return err
		}
		a.emit(progress.DoneEvent(id, "Stopped"))
	case RemoveContainer:
		if act.Container.Running() {
			a.emit(progress.WorkingEvent(id, "Stopping"))
			if err := a.eng.StopContainer(ctx, act.Container.ID, a.timeout(act.Service)); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			a.emit(progress.DoneEvent(id, "Stopped"))
		}
		a.emit(progress.WorkingEvent(id, "Removing"))
		if err := a.eng.RemoveContainer(ctx, act.Container.ID, container.RemoveOptions{Force: true, Volumes: a.opts.RemoveVolumes || act.DropAnonVolumes}); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		a.emit(progress.DoneEvent(id, "Removed"))
	case RemoveNetwork:
		a.emit(progress.WorkingEvent(id, "Removing"))
		if err := a.eng.RemoveNetwork(ctx, act.Name); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		a.emit(progress.DoneEvent(id, "Removed"))
	case RemoveVolume:
		a.emit(progress.WorkingEvent(id, "Removing"))
		if err := a.eng.RemoveVolume(ctx, act.Name); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		a.emit(progress.DoneEvent(id, "Removed"))
	case RemoveImage:
		a.emit(progress.WorkingEvent(id, "Removing"))
		if err := a.eng.RemoveImage(ctx, act.Name); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		a.emit(progress.DoneEvent(id, "Removed"))
	default:
		return fmt.Errorf("unknown action %q", act.Kind)
	}
	return nil
}

func (a *applier) start(ctx context.Context, id, containerID string) error {
	a.emit(progress.WorkingEvent(id, "Starting"))
	if err := a.eng.StartContainer(ctx, containerID); err != nil {
		return err
	}
	a.emit(progress.DoneEvent(id, "Started"))
	return nil
}

func (a *applier) timeout(service string) *time.Duration {
	if a.p == nil {
		return a.opts.Timeout
	}
	return stopTimeout(a.p.Services[service], a.opts.Timeout)
}

// create makes replica act.Replica of act.Service; inherit carries the
// anonymous volumes of the container it replaces.
func (a *applier) create(ctx context.Context, act Action, inherit map[string]string) (container.Container, error) {
	s, ok := a.p.Services[act.Service]
	if !ok {
		return container.Container{}, fmt.Errorf("service %s is not in the project", act.Service)
	}
	imageID, err := a.eng.ImageID(ctx, s.Image)
	if err != nil {
		return container.Container{}, fmt.Errorf("service %s: image %s: %w", s.Name, s.Image, err)
	}
	cfg, err := ContainerConfig(a.p, s, act.Replica, imageID)
	if err != nil {
		return container.Container{}, err
	}
	for i, m := range cfg.Mounts {
		if m.Type == container.MountVolume && m.Source == "" {
			if name, ok := inherit[m.Target]; ok {
				cfg.Mounts[i].Source = name
			}
		}
	}
	for target, name := range inherit {
		if !hasTarget(cfg.Mounts, target) {
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountVolume, Source: name, Target: target})
		}
	}
	return a.eng.CreateContainer(ctx, cfg)
}

func hasTarget(mounts []container.Mount, target string) bool {
	for _, m := range mounts {
		if m.Target == target {
			return true
		}
	}
	return false
}

// recreate replaces a container as docker compose does: stop the old one,
// move it aside, create the new one under the name (with the old one's
// anonymous volumes), start it, and remove the old one.
func (a *applier) recreate(ctx context.Context, id string, act Action) error {
	old := act.Container
	a.emit(progress.WorkingEvent(id, "Recreate"))
	if err := a.eng.StopContainer(ctx, old.ID, a.timeout(act.Service)); err != nil {
		return err
	}
	aside := old.ID[:min(12, len(old.ID))] + "_" + old.Name
	if err := a.eng.RenameContainer(ctx, old.ID, aside); err != nil {
		return err
	}
	var inherit map[string]string
	if !act.DropAnonVolumes {
		if cs, err := a.eng.ListContainers(ctx, map[string]string{LabelProject: a.p.Name, LabelService: act.Service}); err == nil {
			for _, c := range cs {
				if c.ID == old.ID {
					inherit = c.AnonymousVolumes
				}
			}
		}
	}
	c, err := a.create(ctx, act, inherit)
	if err != nil {
		_ = a.eng.RenameContainer(ctx, old.ID, old.Name) // put it back as it was
		return err
	}
	if err := a.eng.RemoveContainer(ctx, old.ID, container.RemoveOptions{Force: true, Volumes: act.DropAnonVolumes}); err != nil {
		return err
	}
	a.emit(progress.DoneEvent(id, "Recreated"))
	if act.Start {
		return a.start(ctx, id, c.ID)
	}
	return nil
}

func networkByName(p *manifest.Project, name string) (manifest.Network, bool) {
	for _, n := range p.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return manifest.Network{}, false
}

func volumeByName(p *manifest.Project, name string) (manifest.Volume, bool) {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return manifest.Volume{}, false
}

func networkOptions(p *manifest.Project, n manifest.Network) network.CreateOptions {
	labels := map[string]string{LabelProject: p.Name, LabelNetwork: n.Key, LabelVersion: Version}
	for k, v := range n.Labels {
		labels[k] = v
	}
	opts := network.CreateOptions{
		Name: n.Name, Driver: n.Driver, Internal: n.Internal, EnableIPv6: n.EnableIPv6,
		IPAMDriver: n.IPAM.Driver, Options: n.DriverOpts, Labels: labels,
	}
	for _, c := range n.IPAM.Config {
		opts.IPAM = append(opts.IPAM, network.IPAMConfig{Subnet: c.Subnet, Gateway: c.Gateway, IPRange: c.IPRange, AuxAddresses: c.AuxAddresses})
	}
	return opts
}
