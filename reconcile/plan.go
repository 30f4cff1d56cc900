package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/manifest"
)

// Kind is what an action does.
type Kind string

const (
	CreateNetwork     Kind = "create network"
	CreateVolume      Kind = "create volume"
	PullImage         Kind = "pull image"
	BuildImage        Kind = "build image"
	CreateContainer   Kind = "create container"
	StartContainer    Kind = "start container"
	RecreateContainer Kind = "recreate container"
	RestartContainer  Kind = "restart container"
	StopContainer     Kind = "stop container"
	RemoveContainer   Kind = "remove container"
	RemoveNetwork     Kind = "remove network"
	RemoveVolume      Kind = "remove volume"
	RemoveImage       Kind = "remove image"
)

// Action is one step of a plan.
type Action struct {
	Kind Kind
	// Resource names what the action is about: network:NAME, volume:NAME,
	// image:SERVICE, service:SERVICE:N, container:NAME (orphans, one-offs).
	Resource string
	Service  string
	Replica  int
	// Name is the engine name: the network, volume, image reference or
	// container the action makes or acts on.
	Name string
	// Container is the existing container acted on, when there is one.
	Container *Container
	// Start: a created or recreated container is started too.
	Start bool
	// DropAnonVolumes: the anonymous volumes of the container removed or
	// replaced go with it, as nothing could mount them again: a scaled
	// down replica's, an orphan's, those -V renews (docker compose leaves
	// them behind). Otherwise a recreated container inherits them.
	DropAnonVolumes bool
	Cause           string
	// After are resources whose actions must finish first; "service:NAME"
	// stands for all of that service's actions and its depends_on condition.
	After []string
}

// Plan is the ordered list of actions that makes a project converge.
type Plan struct {
	Project string
	Actions []Action
	// Converged are the containers that are as declared and need nothing.
	Converged []string
	Warnings  []string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

// String renders the plan deterministically, one action a line.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "project %s\n", p.Project)
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "%s %s", a.Kind, a.Name)
		if a.Resource != "" && !strings.HasSuffix(a.Resource, ":"+a.Name) {
			fmt.Fprintf(&b, " (%s)", a.Resource)
		}
		if a.Kind == CreateContainer || a.Kind == RecreateContainer {
			if !a.Start {
				b.WriteString(" [no start]")
			}
		}
		if a.Cause != "" {
			fmt.Fprintf(&b, ": %s", a.Cause)
		}
		if len(a.After) > 0 {
			fmt.Fprintf(&b, "; after %s", strings.Join(a.After, " "))
		}
		b.WriteByte('\n')
	}
	for _, c := range p.Converged {
		fmt.Fprintf(&b, "converged %s\n", c)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// BuildPolicy says when `up` builds a service's image.
type BuildPolicy string

const (
	BuildIfMissing BuildPolicy = ""       // build only when the image is missing
	BuildAlways    BuildPolicy = "always" // up --build
	BuildNever     BuildPolicy = "never"  // up --no-build
)

// Options are the user's choices for `up` (and create, start...).
type Options struct {
	// Services limits the plan to these services (and, unless NoDeps,
	// what they depend on); empty means all.
	Services []string
	NoDeps   bool
	// ForceRecreate and RenewAnonVolumes recreate the services named (all
	// when none is), AlwaysRecreateDeps what they depend on, as docker
	// compose's --force-recreate, -V and --always-recreate-deps do.
	ForceRecreate      bool
	AlwaysRecreateDeps bool `json:"always_recreate_deps,omitempty"`
	// RenewAnonVolumes gives recreated containers new anonymous volumes
	// instead of their predecessors'.
	RenewAnonVolumes bool `json:"renew_anon_volumes,omitempty"`
	NoRecreate       bool
	RemoveOrphans    bool
	NoStart          bool
	Build            BuildPolicy
	// Pull overrides every service's pull_policy: always, missing, never.
	Pull string
	// KeepCompleted leaves alone a container that ended on its own with
	// status 0 and no restart policy: a finished job. Watch sets it, so
	// drift correction restarts what was stopped or killed, not what
	// completed.
	KeepCompleted bool `json:"keep_completed,omitempty"`
	// NoContainers plans what the services' containers need (networks,
	// volumes, images) but not the containers: run makes its own.
	NoContainers bool `json:"no_containers,omitempty"`
}

// Scope returns the services an operation covers, in dependency order:
// the named ones and, unless noDeps, everything they depend on.
func Scope(p *manifest.Project, services []string, noDeps bool) ([]string, error) {
	if len(services) == 0 {
		return p.DependencyOrder(), nil
	}
	want := map[string]bool{}
	var add func(string) error
	add = func(name string) error {
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("no such service: %s", name)
		}
		if want[name] {
			return nil
		}
		want[name] = true
		if noDeps {
			return nil
		}
		for dep, d := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok && !d.Required {
				continue
			}
			if err := add(dep); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range services {
		if err := add(name); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, name := range p.DependencyOrder() {
		if want[name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// PlanUp computes what makes obs look like p.
func PlanUp(p *manifest.Project, obs Observed, opts Options) (Plan, error) {
	plan := Plan{Project: p.Name}
	services, err := Scope(p, opts.Services, opts.NoDeps)
	if err != nil {
		return plan, err
	}
	inScope := map[string]bool{}
	for _, s := range services {
		inScope[s] = true
	}
	planned := map[string]bool{} // resources with an action

	// Networks and volumes the services in scope use.
	for _, key := range p.NetworkKeys() {
		n := p.Networks[key]
		if !usesNetwork(p, services, key) {
			continue
		}
		if _, ok := obs.Networks[n.Name]; ok {
			continue
		}
		if n.External {
			return plan, fmt.Errorf("network %s declared as external, but could not be found", n.Name)
		}
		res := "network:" + n.Name
		plan.Actions = append(plan.Actions, Action{Kind: CreateNetwork, Resource: res, Name: n.Name, Cause: "missing"})
		planned[res] = true
	}
	for _, key := range p.VolumeKeys() {
		v := p.Volumes[key]
		if !usesVolume(p, services, v.Name) {
			continue
		}
		if _, ok := obs.Volumes[v.Name]; ok {
			continue
		}
		if v.External {
			return plan, fmt.Errorf("external volume %q not found", v.Name)
		}
		res := "volume:" + v.Name
		plan.Actions = append(plan.Actions, Action{Kind: CreateVolume, Resource: res, Name: v.Name, Cause: "missing"})
		planned[res] = true
	}

	// Images. A service whose image another service builds waits for that
	// build rather than pulling (image: x on several services, build: on one).
	builtBy := map[string]string{}
	for _, name := range services {
		if s := p.Services[name]; s.Build != nil {
			if _, ok := builtBy[s.Image]; !ok {
				builtBy[s.Image] = name
			}
		}
	}
	imageOf := map[string]string{} // service -> resource of the action that provides its image
	for _, name := range services {
		s := p.Services[name]
		if builder, ok := builtBy[s.Image]; ok && s.Build == nil {
			imageOf[name] = "image:" + builder
			continue
		}
		if a, ok := imageAction(s, obs, opts); ok {
			planned[a.Resource] = true
			imageOf[name] = a.Resource
			plan.Actions = append(plan.Actions, a)
		}
	}

	if opts.NoContainers {
		return plan, nil
	}

	// Containers, in dependency order; a recreated dependency with
	// restart: true restarts its dependents.
	byService := map[string][]Container{}
	for _, c := range obs.Containers {
		if !c.OneOff {
			byService[c.Service] = append(byService[c.Service], c)
		}
	}
	recreated := map[string]bool{}
	for _, name := range services {
		s := p.Services[name]
		after := containerDeps(p, s, planned, inScope, imageOf[name])
		existing := byService[name]
		slices.SortFunc(existing, func(a, b Container) int { return a.Number - b.Number })
		have := map[int]bool{}
		var scaleDown []Container
		for i := range existing {
			c := existing[i]
			if c.Number > s.Replicas || have[c.Number] {
				scaleDown = append(scaleDown, c)
				continue
			}
			have[c.Number] = true
			res := fmt.Sprintf("service:%s:%d", name, c.Number)
			a := Action{Resource: res, Service: name, Replica: c.Number, Name: c.Name, Container: &existing[i], After: after}
			switch cause := recreateCause(s, c, obs, opts); {
			case cause != "":
				a.Kind, a.Cause, a.Start = RecreateContainer, cause, !opts.NoStart
				a.DropAnonVolumes = opts.RenewAnonVolumes
				recreated[name] = true
			case restartCause(s, recreated) != "" && c.Running():
				a.Kind, a.Cause = RestartContainer, restartCause(s, recreated)
			case opts.KeepCompleted && completed(s, c):
				plan.Converged = append(plan.Converged, c.Name)
				continue
			case !c.Running() && !opts.NoStart:
				a.Kind, a.Cause = StartContainer, "not running ("+c.State+")"
			default:
				plan.Converged = append(plan.Converged, c.Name)
				continue
			}
			plan.Actions = append(plan.Actions, a)
		}
		for n := 1; n <= s.Replicas; n++ {
			if have[n] {
				continue
			}
			plan.Actions = append(plan.Actions, Action{
				Kind: CreateContainer, Resource: fmt.Sprintf("service:%s:%d", name, n), Service: name, Replica: n,
				Name: p.ContainerName(name, n), Start: !opts.NoStart, Cause: "missing", After: after,
			})
		}
		// Scale down: the highest numbers go first.
		slices.SortFunc(scaleDown, func(a, b Container) int { return b.Number - a.Number })
		for i := range scaleDown {
			c := scaleDown[i]
			plan.Actions = append(plan.Actions, Action{
				Kind: RemoveContainer, Resource: fmt.Sprintf("service:%s:%d", name, c.Number), Service: name, Replica: c.Number,
				Name: c.Name, Container: &scaleDown[i], Cause: fmt.Sprintf("scale down to %d", s.Replicas), DropAnonVolumes: true,
			})
		}
	}

	// Orphans: containers of services the files no longer have.
	var orphans []Container
	for _, c := range obs.Containers {
		if _, ok := p.Services[c.Service]; !ok && !c.OneOff {
			orphans = append(orphans, c)
		}
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Name < orphans[j].Name })
	if len(orphans) > 0 && len(opts.Services) == 0 {
		if opts.RemoveOrphans {
			for i := range orphans {
				c := orphans[i]
				plan.Actions = append(plan.Actions, Action{Kind: RemoveContainer, Resource: "container:" + c.Name, Service: c.Service, Replica: c.Number, Name: c.Name, Container: &orphans[i], Cause: "orphan: service " + c.Service + " is not in the project", DropAnonVolumes: true})
			}
		} else {
			var names []string
			for _, c := range orphans {
				names = append(names, c.Name)
			}
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", strings.Join(names, ", ")))
		}
	}
	return plan, nil
}

func usesNetwork(p *manifest.Project, services []string, key string) bool {
	for _, name := range services {
		for _, n := range p.Services[name].Networks {
			if n.Key == key {
				return true
			}
		}
	}
	return false
}

func usesVolume(p *manifest.Project, services []string, volumeName string) bool {
	for _, name := range services {
		for _, m := range p.Services[name].Mounts {
			if m.Type == manifest.MountVolume && m.Source == volumeName {
				return true
			}
		}
	}
	return false
}

// imageAction decides whether a service's image must be built or pulled.
func imageAction(s manifest.Service, obs Observed, opts Options) (Action, bool) {
	_, present := obs.Images[s.Image]
	a := Action{Resource: "image:" + s.Name, Service: s.Name, Name: s.Image}
	if s.Build != nil && opts.Build != BuildNever {
		switch {
		case opts.Build == BuildAlways:
			a.Kind, a.Cause = BuildImage, "--build"
			return a, true
		case s.PullPolicy == "build":
			a.Kind, a.Cause = BuildImage, "pull_policy: build"
			return a, true
		case !present:
			a.Kind, a.Cause = BuildImage, "missing"
			return a, true
		}
		return a, false
	}
	policy := s.PullPolicy
	if opts.Pull != "" {
		policy = opts.Pull
	}
	switch policy {
	case "always":
		a.Kind, a.Cause = PullImage, "pull_policy: always"
		return a, true
	case "never":
		return a, false // apply reports the missing image
	}
	if !present {
		a.Kind, a.Cause = PullImage, "missing"
		return a, true
	}
	return a, false
}

// containerDeps are what a service's containers wait for.
func containerDeps(p *manifest.Project, s manifest.Service, planned, inScope map[string]bool, image string) []string {
	var after []string
	for _, n := range s.Networks {
		if res := "network:" + n.Name; planned[res] {
			after = append(after, res)
		}
	}
	for _, m := range s.Mounts {
		if res := "volume:" + m.Source; m.Type == manifest.MountVolume && planned[res] {
			after = append(after, res)
		}
	}
	if planned[image] {
		after = append(after, image)
	}
	for _, dep := range sortedDeps(s) {
		if inScope[dep] {
			after = append(after, "service:"+dep)
		}
	}
	return after
}

func sortedDeps(s manifest.Service) []string {
	deps := make([]string, 0, len(s.DependsOn))
	for d := range s.DependsOn {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	return deps
}

// named says whether the user named service (or named none): the one
// --force-recreate and -V apply to, rather than --always-recreate-deps.
func named(opts Options, service string) bool {
	return len(opts.Services) == 0 || slices.Contains(opts.Services, service)
}

// recreateCause says why an existing replica must be replaced, or "".
func recreateCause(s manifest.Service, c Container, obs Observed, opts Options) string {
	chosen := named(opts, s.Name)
	switch {
	case opts.NoRecreate:
		return ""
	case chosen && opts.ForceRecreate:
		return "--force-recreate"
	case chosen && opts.RenewAnonVolumes:
		return "--renew-anon-volumes"
	case !chosen && opts.AlwaysRecreateDeps:
		return "--always-recreate-deps"
	}
	if c.ConfigHash != s.ConfigHash {
		if fields := changedFields(FieldHashes(s), c.Fields); len(fields) > 0 {
			return "config hash changed: " + strings.Join(fields, ", ")
		}
		return "config hash changed"
	}
	if id, ok := obs.Images[s.Image]; ok && c.ImageID != "" && id != c.ImageID {
		return "image changed"
	}
	return ""
}

// completed reports whether a container is a job that finished: exited
// by itself with status 0, under no restart policy.
func completed(s manifest.Service, c Container) bool {
	return c.State == "exited" && c.ExitCode == 0 && !c.StoppedByUser &&
		(s.Restart.Name == "" || s.Restart.Name == manifest.RestartNo)
}

// restartCause says why a replica restarts because a dependency with
// restart: true was recreated, or "".
func restartCause(s manifest.Service, recreated map[string]bool) string {
	for _, dep := range sortedDeps(s) {
		if s.DependsOn[dep].Restart && recreated[dep] {
			return "dependency " + dep + " was recreated"
		}
	}
	return ""
}

func changedFields(want, have map[string]string) []string {
	if len(have) == 0 {
		return nil
	}
	var out []string
	for k, v := range want {
		if have[k] != v {
			out = append(out, k)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
