package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/reconcile"
)

// Wire types of the project endpoints.
type (
	// UpRequest is the body of POST /v1/projects/up.
	UpRequest struct {
		Project *manifest.Project `json:"project"`
		Options reconcile.Options `json:"options"`
		// Timeout is -t: the stop grace for containers being replaced.
		Timeout *time.Duration `json:"timeout,omitempty"`
		// DryRun plans and answers the plan without doing it.
		DryRun bool `json:"dry_run,omitempty"`
	}
	// UpResult answers an up.
	UpResult struct {
		Plan    string `json:"plan"`
		Changed bool   `json:"changed"`
	}
	// DownRequest is the body of POST /v1/projects/down.
	DownRequest struct {
		Name    string                `json:"name"`
		Project *manifest.Project     `json:"project,omitempty"` // nil: from labels only
		Options reconcile.DownOptions `json:"options"`
		Timeout *time.Duration        `json:"timeout,omitempty"`
		DryRun  bool                  `json:"dry_run,omitempty"`
	}
	// ProjectSummary is one line of `berth ls`.
	ProjectSummary struct {
		Name        string `json:"Name"`
		Status      string `json:"Status"`
		ConfigFiles string `json:"ConfigFiles"`
	}
)

// projects serialises operations per project: two `up`s, or an `up` and a
// `down`, of one project never run at once; different projects do.
type projects struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (ps *projects) lock(name string) func() {
	ps.mu.Lock()
	if ps.locks == nil {
		ps.locks = map[string]*sync.Mutex{}
	}
	l, ok := ps.locks[name]
	if !ok {
		l = &sync.Mutex{}
		ps.locks[name] = l
	}
	ps.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (d *Daemon) projectRoutes(mux *http.ServeMux) {
	p := "/" + api.Version + "/projects"
	mux.HandleFunc("POST "+p+"/up", d.up)
	mux.HandleFunc("POST "+p+"/down", d.down)
	mux.HandleFunc("GET "+p, d.listProjects)
}

// streamOp runs op with a progress sink that streams to the client.
func streamOp(w http.ResponseWriter, op func(sink progress.Sink) (any, error)) {
	sw := api.NewStreamWriter(w)
	sink := progress.SinkFunc(func(e progress.Event) { _ = sw.Event(e) })
	result, err := op(sink)
	sw.Finish(result, err)
}

func (d *Daemon) up(w http.ResponseWriter, r *http.Request) {
	var req UpRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if req.Project == nil || req.Project.Name == "" {
		api.WriteError(w, errdefs.ErrInvalidArgument.WithMessage("up: no project"))
		return
	}
	streamOp(w, func(sink progress.Sink) (any, error) {
		return d.Up(r.Context(), req, sink)
	})
}

// Up makes the project converge: observe, plan, apply.
func (d *Daemon) Up(ctx context.Context, req UpRequest, sink progress.Sink) (UpResult, error) {
	p := req.Project
	// The request's context ends when the CLI goes away (Ctrl-C): the
	// convergence already under way finishes, as docker compose's does.
	ctx = context.WithoutCancel(ctx)
	if req.DryRun {
		defer d.projects.lock(p.Name)()
		obs, err := reconcile.Observe(ctx, d.engine, p.Name, p)
		if err != nil {
			return UpResult{}, err
		}
		plan, err := reconcile.PlanUp(p, obs, req.Options)
		return UpResult{Plan: plan.String(), Changed: !plan.Empty()}, err
	}
	plan, err := d.converge(ctx, p, req.Options, req.Timeout, sink)
	return UpResult{Plan: plan.String(), Changed: !plan.Empty()}, err
}

// converge is one pass for a project, under its lock. Images are built or
// pulled first, then the plan is made again, so that containers are
// compared with the images they will run. It returns what it planned.
func (d *Daemon) converge(ctx context.Context, p *manifest.Project, opts reconcile.Options, timeout *time.Duration, sink progress.Sink) (reconcile.Plan, error) {
	defer d.projects.lock(p.Name)()
	obs, err := reconcile.Observe(ctx, d.engine, p.Name, p)
	if err != nil {
		return reconcile.Plan{}, err
	}
	plan, err := reconcile.PlanUp(p, obs, opts)
	if err != nil {
		return plan, err
	}
	applyOpts := reconcile.ApplyOptions{Timeout: timeout, Sink: sink}
	images, rest := splitImageActions(plan)
	if len(images.Actions) > 0 {
		if err := reconcile.Apply(ctx, d.engine, p, images, applyOpts); err != nil {
			return images, err
		}
		// New images may make running containers out of date: plan again.
		if obs, err = reconcile.Observe(ctx, d.engine, p.Name, p); err != nil {
			return plan, err
		}
		if plan, err = reconcile.PlanUp(p, obs, opts); err != nil {
			return plan, err
		}
		_, rest = splitImageActions(plan)
		plan.Actions = append(images.Actions, rest.Actions...) // what this pass did
	}
	if len(rest.Actions) > 0 {
		d.log.Info("converge", "project", p.Name, "actions", len(plan.Actions))
	}
	return plan, reconcile.Apply(ctx, d.engine, p, rest, applyOpts)
}

// splitImageActions separates a plan's builds and pulls from the rest;
// the rest no longer waits for them (they are done first).
func splitImageActions(p reconcile.Plan) (images, rest reconcile.Plan) {
	images, rest = reconcile.Plan{Project: p.Project}, p
	rest.Actions = nil
	for _, a := range p.Actions {
		if a.Kind == reconcile.PullImage || a.Kind == reconcile.BuildImage {
			images.Actions = append(images.Actions, a)
			continue
		}
		var after []string
		for _, dep := range a.After {
			if !strings.HasPrefix(dep, "image:") {
				after = append(after, dep)
			}
		}
		a.After = after
		rest.Actions = append(rest.Actions, a)
	}
	return images, rest
}

func (d *Daemon) down(w http.ResponseWriter, r *http.Request) {
	var req DownRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if req.Name == "" {
		api.WriteError(w, errdefs.ErrInvalidArgument.WithMessage("down: no project name"))
		return
	}
	streamOp(w, func(sink progress.Sink) (any, error) {
		return d.Down(r.Context(), req, sink)
	})
}

// Down takes a project away. A watch of the project ends first, or it
// would put back what down removes; it is stopped before the project's lock
// is taken, since a pass of the watch holds that lock.
func (d *Daemon) Down(ctx context.Context, req DownRequest, sink progress.Sink) (UpResult, error) {
	if !req.DryRun && d.stopWatch(req.Name, true) {
		progress.Emit(sink, progress.DoneEvent("Watch "+req.Name, "Stopped"))
	}
	defer d.projects.lock(req.Name)()
	ctx = context.WithoutCancel(ctx)
	obs, err := reconcile.Observe(ctx, d.engine, req.Name, req.Project)
	if err != nil {
		return UpResult{}, err
	}
	plan := reconcile.PlanDown(req.Name, req.Project, obs, req.Options)
	if req.DryRun {
		return UpResult{Plan: plan.String(), Changed: !plan.Empty()}, nil
	}
	if plan.Empty() && req.Project == nil {
		return UpResult{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no resource found to remove for project %q", req.Name))
	}
	err = reconcile.Apply(ctx, d.engine, req.Project, plan, reconcile.ApplyOptions{
		Timeout: req.Timeout, RemoveVolumes: req.Options.Volumes, Sink: sink,
	})
	return UpResult{Plan: plan.String(), Changed: !plan.Empty()}, err
}

func (d *Daemon) listProjects(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") != ""
	type acc struct {
		states map[string]int
		files  string
	}
	byName := map[string]*acc{}
	for _, c := range d.engine.Containers.List(container.ListOptions{All: true, Labels: map[string]string{reconcile.LabelProject: ""}}) {
		name := c.Config.Labels[reconcile.LabelProject]
		a := byName[name]
		if a == nil {
			a = &acc{states: map[string]int{}, files: c.Config.Labels[reconcile.LabelConfigFiles]}
			byName[name] = a
		}
		a.states[string(c.State.Status)]++
	}
	var out []ProjectSummary
	for name, a := range byName {
		if !all && a.states["running"] == 0 {
			continue
		}
		var parts []string
		for _, st := range sortedKeys(a.states) {
			parts = append(parts, fmt.Sprintf("%s(%d)", st, a.states[st]))
		}
		out = append(out, ProjectSummary{Name: name, Status: strings.Join(parts, ", "), ConfigFiles: a.files})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []ProjectSummary{}
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ProjectClient calls the project endpoints.
type ProjectClient struct{ c *api.Client }

// Projects returns a client for the project endpoints.
func Projects(c *api.Client) *ProjectClient { return &ProjectClient{c: c} }

// eventsTo decodes streamed progress events into sink.
func eventsTo(sink progress.Sink) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var e progress.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bad progress event: %w", err)
		}
		progress.Emit(sink, e)
		return nil
	}
}

// Up converges a project, streaming progress to sink.
func (pc *ProjectClient) Up(ctx context.Context, req UpRequest, sink progress.Sink) (UpResult, error) {
	var res UpResult
	err := pc.c.Stream(ctx, http.MethodPost, "/"+api.Version+"/projects/up", req, eventsTo(sink), &res)
	return res, err
}

// Down takes a project away, streaming progress to sink.
func (pc *ProjectClient) Down(ctx context.Context, req DownRequest, sink progress.Sink) (UpResult, error) {
	var res UpResult
	err := pc.c.Stream(ctx, http.MethodPost, "/"+api.Version+"/projects/down", req, eventsTo(sink), &res)
	return res, err
}

// List returns the projects that have containers (all: stopped ones too).
func (pc *ProjectClient) List(ctx context.Context, all bool) ([]ProjectSummary, error) {
	var out []ProjectSummary
	path := "/" + api.Version + "/projects"
	if all {
		path += "?all=1"
	}
	err := pc.c.Call(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
