package reconcile

import (
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/manifest"
)

// DownOptions are `down`'s flags.
type DownOptions struct {
	Volumes       bool   // -v: named volumes declared by the project, and anonymous ones
	RemoveOrphans bool   // containers of services the files no longer have
	Images        string // --rmi: "", "local" or "all"
}

// PlanDown computes what takes a project away: its containers in reverse
// dependency order, then its networks (never external ones), then with -v
// its volumes and with --rmi its images. p may be nil when no Compose file
// is at hand (`down -p NAME`): the labels on what runs then say it all.
func PlanDown(project string, p *manifest.Project, obs Observed, opts DownOptions) Plan {
	plan := Plan{Project: project}
	deps := dependencies(p, obs)

	var containers []Container
	var orphans []string
	for _, c := range obs.Containers {
		if p != nil && !c.OneOff {
			if _, ok := p.Services[c.Service]; !ok && !opts.RemoveOrphans {
				orphans = append(orphans, c.Name)
				continue
			}
		}
		containers = append(containers, c)
	}
	sort.Slice(containers, func(i, j int) bool { return containers[i].Name < containers[j].Name })
	// A container goes after every container that depends on it.
	var removed []string
	for i := range containers {
		c := containers[i]
		res := "container:" + c.Name
		var after []string
		for _, other := range containers {
			if other.Name != c.Name && slices.Contains(deps[other.Service], c.Service) {
				after = append(after, "container:"+other.Name)
			}
		}
		plan.Actions = append(plan.Actions, Action{Kind: RemoveContainer, Resource: res, Service: c.Service, Replica: c.Number, Name: c.Name, Container: &containers[i], Cause: "down", After: after})
		removed = append(removed, res)
	}
	if len(orphans) > 0 {
		plan.Warnings = append(plan.Warnings, "Found orphan containers ("+strings.Join(orphans, ", ")+") for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.")
	}

	external := map[string]bool{}
	if p != nil {
		for _, n := range p.Networks {
			if n.External {
				external[n.Name] = true
			}
		}
		for _, v := range p.Volumes {
			if v.External {
				external["volume:"+v.Name] = true
			}
		}
	}
	for _, name := range sortedResourceNames(obs.Networks) {
		if external[name] {
			continue
		}
		plan.Actions = append(plan.Actions, Action{Kind: RemoveNetwork, Resource: "network:" + name, Name: name, Cause: "down", After: removed})
	}
	if opts.Volumes {
		for _, name := range sortedResourceNames(obs.Volumes) {
			if external["volume:"+name] {
				continue
			}
			plan.Actions = append(plan.Actions, Action{Kind: RemoveVolume, Resource: "volume:" + name, Name: name, Cause: "down -v", After: removed})
		}
	}
	if opts.Images != "" && p != nil {
		seen := map[string]bool{}
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			// local: only images without a custom tag, those berth named
			// after the service when it built them.
			if seen[s.Image] || (opts.Images == "local" && !(s.Build != nil && s.Image == p.Name+"-"+s.Name)) {
				continue
			}
			seen[s.Image] = true
			plan.Actions = append(plan.Actions, Action{Kind: RemoveImage, Resource: "image:" + s.Name, Service: s.Name, Name: s.Image, Cause: "down --rmi " + opts.Images, After: removed})
		}
	}
	return plan
}

// dependencies maps each service to those it depends on, from the files
// when there are any, else from the depends_on labels of the containers.
func dependencies(p *manifest.Project, obs Observed) map[string][]string {
	deps := map[string][]string{}
	if p != nil {
		for name, s := range p.Services {
			deps[name] = sortedDeps(s)
		}
	}
	for _, c := range obs.Containers {
		if _, ok := deps[c.Service]; ok {
			continue
		}
		for _, part := range strings.Split(c.Labels[LabelDependsOn], ",") {
			if name, _, _ := strings.Cut(part, ":"); name != "" {
				deps[c.Service] = append(deps[c.Service], name)
			}
		}
	}
	return deps
}

func sortedResourceNames(m map[string]Resource) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
