// Package reconcile makes what runs match what a Compose project declares:
// observe the engine, plan the difference, apply the plan.
//
// Plan is a pure function of the desired project (manifest.Project), what
// the engine reports for it (Observed) and the user's options; it returns
// ordered actions, each with a resource id ("service:web:2"), a cause
// ("config hash changed: environment") and the resources it must wait for.
// Apply runs a plan against an Engine: networks and volumes first, then
// images, then containers in depends_on order, independent work in
// parallel, each start gated by its dependencies' conditions.
//
// The loop is level-triggered: every pass observes from scratch and never
// trusts a cached view, so a second `up` of a converged project plans
// nothing and says so.
package reconcile

import "time"

// Container is one container of the project, as observed through its labels.
type Container struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Service    string            `json:"service"`
	Number     int               `json:"number"`
	OneOff     bool              `json:"oneoff,omitempty"`
	ConfigHash string            `json:"config_hash"`
	Fields     map[string]string `json:"-"` // per-field hashes, from LabelConfigFields
	ImageID    string            `json:"image_id"`
	State      string            `json:"state"`            // created, running, paused, restarting, exited
	Health     string            `json:"health,omitempty"` // starting, healthy, unhealthy
	ExitCode   int               `json:"exit_code"`
	// StoppedByUser: a stop or kill ended it, not the process itself.
	StoppedByUser bool              `json:"stopped_by_user,omitempty"`
	Created       time.Time         `json:"created"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Running reports whether the container's process runs (paused counts).
func (c Container) Running() bool {
	return c.State == "running" || c.State == "paused" || c.State == "restarting"
}

// Resource is a network or volume of the project, as observed.
type Resource struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Observed is everything the engine reports about one project.
type Observed struct {
	Containers []Container
	Networks   map[string]Resource // by engine name
	Volumes    map[string]Resource // by engine name
	// Images maps the references the services use to the IDs of the
	// images present; a reference that is missing is not pulled or built yet.
	Images map[string]string
}
