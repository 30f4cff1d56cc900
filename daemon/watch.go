package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/reconcile"
)

// WatchRequest registers a project with the daemon, which from then on
// keeps it converged with its files (POST /v1/projects/watch).
type WatchRequest struct {
	// Load is how the daemon reads the files: the user's flags,
	// environment and directory, captured by the CLI.
	Load     manifest.Options  `json:"load"`
	Project  string            `json:"project"`
	Dirs     []string          `json:"dirs"`
	Files    []string          `json:"files"`
	Options  reconcile.Options `json:"options"`
	Resync   time.Duration     `json:"resync,omitempty"`
	Since    time.Time         `json:"since"`
	Attached bool              `json:"attached,omitempty"` // ends when the CLI that made it goes
}

// WatchInfo is one line of `berth watch ls`.
type WatchInfo struct {
	Project   string                `json:"Project"`
	Dirs      []string              `json:"Dirs"`
	Since     time.Time             `json:"Since"`
	LastEvent *reconcile.WatchEvent `json:"LastEvent,omitempty"`
}

// watches are the daemon's running watches, persisted in ROOT/watches.
type watches struct {
	mu      sync.Mutex
	running map[string]*watch
	subs    map[chan reconcile.WatchEvent]string // subscriber -> project ("" for all)
	// loadMu serialises file loading: compose-go keeps package state that
	// concurrent loads would race on.
	loadMu sync.Mutex
}

type watch struct {
	req    WatchRequest
	cancel context.CancelFunc
	done   chan struct{}
	last   *reconcile.WatchEvent
}

func (d *Daemon) watchDir() string { return filepath.Join(d.cfg.Root, "watches") }

func (d *Daemon) watchRoutes(mux *http.ServeMux) {
	p := "/" + api.Version + "/projects"
	mux.HandleFunc("POST "+p+"/watch", d.startWatchHandler)
	mux.HandleFunc("GET "+p+"/watches", d.listWatches)
	mux.HandleFunc("DELETE "+p+"/watch", d.stopWatchHandler)
	mux.HandleFunc("GET "+p+"/events", d.projectEvents)
}

// resumeWatches starts the watches a previous daemon left registered.
func (d *Daemon) resumeWatches() {
	entries, err := os.ReadDir(d.watchDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var req WatchRequest
		if err := atomicfile.ReadJSON(filepath.Join(d.watchDir(), e.Name()), &req); err != nil {
			d.log.Warn("watch: unreadable registration", "file", e.Name(), "err", err)
			continue
		}
		if req.Attached {
			_ = os.Remove(filepath.Join(d.watchDir(), e.Name()))
			continue
		}
		d.log.Info("watch: resuming", "project", req.Project)
		d.startWatch(req)
	}
}

func (d *Daemon) startWatchHandler(w http.ResponseWriter, r *http.Request) {
	var req WatchRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if req.Project == "" || len(req.Dirs) == 0 {
		api.WriteError(w, errdefs.ErrInvalidArgument.WithMessage("watch: project and directories are required"))
		return
	}
	req.Since = time.Now().UTC()
	if err := os.MkdirAll(d.watchDir(), 0o700); err != nil {
		api.WriteError(w, err)
		return
	}
	if err := atomicfile.WriteJSON(filepath.Join(d.watchDir(), req.Project+".json"), req, 0o600); err != nil {
		api.WriteError(w, err)
		return
	}
	d.startWatch(req)
	api.WriteJSON(w, http.StatusOK, WatchInfo{Project: req.Project, Dirs: req.Dirs, Since: req.Since})
}

// startWatch runs a watch, replacing one of the same project.
func (d *Daemon) startWatch(req WatchRequest) {
	d.stopWatch(req.Project, false)
	ctx, cancel := context.WithCancel(d.ctx)
	wt := &watch{req: req, cancel: cancel, done: make(chan struct{})}
	d.watches.mu.Lock()
	if d.watches.running == nil {
		d.watches.running = map[string]*watch{}
	}
	d.watches.running[req.Project] = wt
	d.watches.mu.Unlock()

	drift := d.driftSignals(ctx, req.Project)
	spec := reconcile.WatchSpec{
		Project: req.Project, Dirs: req.Dirs, Files: req.Files, Options: req.Options, Resync: req.Resync,
		Develop: develop{d: d},
		Load: func(ctx context.Context) (*manifest.Project, error) {
			d.watches.loadMu.Lock()
			defer d.watches.loadMu.Unlock()
			p, err := manifest.Load(ctx, req.Load)
			if err == nil && p.Name != req.Project {
				return nil, fmt.Errorf("the files now name project %q, not %q: stop this watch and start another", p.Name, req.Project)
			}
			return p, err
		},
	}
	converge := func(ctx context.Context, p *manifest.Project, opts reconcile.Options, _ progress.Sink) (reconcile.Plan, error) {
		return d.converge(ctx, p, opts, nil, nil)
	}
	go func() {
		defer close(wt.done)
		err := reconcile.Watch(ctx, spec, converge, drift, func(ev reconcile.WatchEvent) {
			d.watches.mu.Lock()
			wt.last = &ev
			d.watches.mu.Unlock()
			d.publishWatchEvent(ev)
		})
		if err != nil {
			d.publishWatchEvent(reconcile.WatchEvent{Time: time.Now().UTC(), Project: req.Project, Kind: "error", Text: "watch stopped: " + err.Error()})
		}
	}()
}

// driftSignals turns the project's container events that mean "something
// changed behind berth's back" (a stop, a kill, a removal) into signals,
// folded while a pass is pending.
func (d *Daemon) driftSignals(ctx context.Context, project string) <-chan struct{} {
	out := make(chan struct{}, 1)
	events := d.engine.Containers.Subscribe(ctx)
	go func() {
		for ev := range events {
			if ev.Labels[reconcile.LabelProject] != project {
				continue
			}
			switch ev.Action {
			case "die", "destroy":
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

func (d *Daemon) publishWatchEvent(ev reconcile.WatchEvent) {
	switch ev.Kind {
	case "error":
		d.log.Warn("watch", "project", ev.Project, "trigger", ev.Trigger, "error", ev.Text)
	case "applied":
		d.log.Info("watch", "project", ev.Project, "trigger", ev.Trigger, "applied", ev.Text)
	}
	d.watches.mu.Lock()
	defer d.watches.mu.Unlock()
	for ch, project := range d.watches.subs {
		if project != "" && project != ev.Project {
			continue
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// stopWatch ends a project's watch; forget also removes its registration.
func (d *Daemon) stopWatch(project string, forget bool) bool {
	d.watches.mu.Lock()
	wt := d.watches.running[project]
	delete(d.watches.running, project)
	d.watches.mu.Unlock()
	if forget {
		_ = os.Remove(filepath.Join(d.watchDir(), project+".json"))
	}
	if wt == nil {
		return false
	}
	wt.cancel()
	<-wt.done
	return true
}

func (d *Daemon) stopWatchHandler(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("project")
	if !d.stopWatch(name, true) {
		api.WriteError(w, errdefs.ErrNotFound.WithMessage("no watch for project "+name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *Daemon) listWatches(w http.ResponseWriter, r *http.Request) {
	d.watches.mu.Lock()
	out := []WatchInfo{}
	for _, wt := range d.watches.running {
		out = append(out, WatchInfo{Project: wt.req.Project, Dirs: wt.req.Dirs, Since: wt.req.Since, LastEvent: wt.last})
	}
	d.watches.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Project < out[j].Project })
	api.WriteJSON(w, http.StatusOK, out)
}

// projectEvents streams watch events (of one project, or all) until the
// client goes; its first line says the stream is live.
func (d *Daemon) projectEvents(w http.ResponseWriter, r *http.Request) {
	project := r.URL.Query().Get("project")
	ch := make(chan reconcile.WatchEvent, 64)
	d.watches.mu.Lock()
	if d.watches.subs == nil {
		d.watches.subs = map[chan reconcile.WatchEvent]string{}
	}
	d.watches.subs[ch] = project
	d.watches.mu.Unlock()
	defer func() {
		d.watches.mu.Lock()
		delete(d.watches.subs, ch)
		d.watches.mu.Unlock()
	}()
	sw := api.NewStreamWriter(w)
	if sw.Event(reconcile.WatchEvent{Kind: "subscribed", Project: project}) != nil {
		return
	}
	for {
		select {
		case ev := <-ch:
			if sw.Event(ev) != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			sw.Finish(nil, nil)
			return
		}
	}
}

// stopAllWatches ends every watch at daemon shutdown; registrations stay.
func (d *Daemon) stopAllWatches() {
	d.watches.mu.Lock()
	var names []string
	for n := range d.watches.running {
		names = append(names, n)
	}
	d.watches.mu.Unlock()
	for _, n := range names {
		d.stopWatch(n, false)
	}
}

// Watch registers a watch.
func (pc *ProjectClient) Watch(ctx context.Context, req WatchRequest) (WatchInfo, error) {
	var out WatchInfo
	err := pc.c.Call(ctx, http.MethodPost, "/"+api.Version+"/projects/watch", req, &out)
	return out, err
}

// StopWatch ends a project's watch.
func (pc *ProjectClient) StopWatch(ctx context.Context, project string) error {
	return pc.c.Call(ctx, http.MethodDelete, "/"+api.Version+"/projects/watch?project="+url.QueryEscape(project), nil, nil)
}

// Watches lists the running watches.
func (pc *ProjectClient) Watches(ctx context.Context) ([]WatchInfo, error) {
	var out []WatchInfo
	err := pc.c.Call(ctx, http.MethodGet, "/"+api.Version+"/projects/watches", nil, &out)
	return out, err
}

// Events calls fn with the watch events of project ("" for all) until ctx
// ends; live is called once the stream is established.
func (pc *ProjectClient) Events(ctx context.Context, project string, live func(), fn func(reconcile.WatchEvent)) error {
	first := true
	return pc.c.Stream(ctx, http.MethodGet, "/"+api.Version+"/projects/events?project="+url.QueryEscape(project), nil, func(raw json.RawMessage) error {
		var ev reconcile.WatchEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return err
		}
		if first {
			first = false
			if live != nil {
				live()
			}
			return nil
		}
		fn(ev)
		return nil
	}, nil)
}
