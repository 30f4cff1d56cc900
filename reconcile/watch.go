package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
)

// WatchEvent is what a watch reports after each pass: what changed and
// what was done, or why nothing was.
type WatchEvent struct {
	Time    time.Time `json:"time"`
	Project string    `json:"project"`
	// Kind is "converged" (nothing to do), "applied", "error" (the files
	// do not load or the apply failed; what runs is left as it was) or
	// "stopped".
	Kind    string `json:"kind"`
	Trigger string `json:"trigger"` // files, resync, drift, start
	Text    string `json:"text"`
	Plan    string `json:"plan,omitempty"`
}

// WatchSpec says what a watch keeps converged.
type WatchSpec struct {
	Project string
	// Load reads the files afresh; a failure leaves everything as it is.
	Load func(ctx context.Context) (*manifest.Project, error)
	// Dirs are watched recursively (.git and hidden directories skipped).
	Dirs []string
	// Files are the files whose change triggers a pass (besides any
	// Compose-looking file: *.yml, *.yaml, *.env, .env).
	Files   []string
	Options Options
	// Resync is the period of passes without events (drift correction).
	Resync time.Duration
	// Debounce folds a burst of file events (an editor's save, a git
	// checkout) into one pass, taken this long after the last event.
	Debounce time.Duration
	// Develop carries out the services' develop.watch rules (sync,
	// rebuild, sync+restart, sync+exec) on changes under their paths; nil
	// leaves the rules alone.
	Develop Develop
}

// Converger runs one pass: observe, plan, apply. The daemon gives the
// watch its own (which holds the project's lock and streams progress).
type Converger func(ctx context.Context, p *manifest.Project, opts Options, sink progress.Sink) (Plan, error)

// Watch keeps a project converged with its files until ctx ends: a pass
// at start, after each burst of file events, on every drift signal, and
// every Resync. Passes never overlap; triggers during a pass fold into
// one more pass after it.
func Watch(ctx context.Context, spec WatchSpec, converge Converger, drift <-chan struct{}, report func(WatchEvent)) error {
	if spec.Debounce == 0 {
		spec.Debounce = 100 * time.Millisecond
	}
	if spec.Resync == 0 {
		spec.Resync = 30 * time.Second
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", spec.Project, err)
	}
	defer w.Close()
	for _, d := range spec.Dirs {
		if err := addTree(w, d); err != nil {
			return fmt.Errorf("watch %s: %w", spec.Project, err)
		}
	}
	files := map[string]bool{}
	for _, f := range spec.Files {
		if abs, err := filepath.Abs(f); err == nil {
			files[abs] = true
		}
	}
	// The develop.watch rules of the last version of the files that
	// loaded, and the changes they matched since the last develop pass.
	var rules *developMatcher
	var lastGood *manifest.Project
	pending := map[int]*pendingRule{}
	pass := func(trigger string) {
		ev := WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Trigger: trigger}
		p, err := spec.Load(ctx)
		if err != nil {
			ev.Kind, ev.Text = "error", "files not applied: "+err.Error()
			report(ev)
			return
		}
		if spec.Develop != nil {
			if m, err := newDevelopMatcher(p); err == nil {
				rules = m
				for _, d := range m.dirs() {
					_ = addTree(w, d)
				}
			}
		}
		lastGood = p
		opts := spec.Options
		// Following the files: what they no longer declare goes, and jobs
		// that completed stay completed.
		opts.KeepCompleted, opts.RemoveOrphans = true, true
		plan, err := converge(ctx, p, opts, nil)
		ev.Plan = plan.String()
		switch {
		case err != nil:
			ev.Kind, ev.Text = "error", err.Error()
		case plan.Empty():
			ev.Kind, ev.Text = "converged", "nothing to do"
		default:
			ev.Kind, ev.Text = "applied", summary(plan)
		}
		report(ev)
	}

	pass("start")
	if spec.Develop != nil && rules != nil {
		text, err := initialSync(ctx, spec.Project, rules, spec.Develop)
		switch {
		case err != nil:
			report(WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Trigger: "develop", Kind: "error", Text: err.Error()})
		case text != "":
			report(WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Trigger: "develop", Kind: "applied", Text: text})
		}
	}
	resync := time.NewTicker(spec.Resync)
	defer resync.Stop()
	var debounce, developDebounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			report(WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Kind: "stopped", Text: "watch ended"})
			return nil
		case e, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if e.Has(fsnotify.Create) {
				if info, err := os.Stat(e.Name); err == nil && info.IsDir() && !skipDir(e.Name) {
					_ = addTree(w, e.Name)
				}
			}
			if relevant(e.Name, files) {
				debounce = time.After(spec.Debounce)
			} else if rules != nil {
				rules.match(e.Name, pending)
				if len(pending) > 0 {
					developDebounce = time.After(spec.Debounce)
				}
			}
		case err := <-w.Errors:
			report(WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Kind: "error", Trigger: "files", Text: "file watcher: " + err.Error()})
		case <-debounce:
			debounce = nil
			pass("files")
		case <-developDebounce:
			developDebounce = nil
			ev := WatchEvent{Time: time.Now().UTC(), Project: spec.Project, Trigger: "develop", Kind: "applied"}
			text, err := runDevelop(ctx, spec.Project, lastGood, pending, spec.Develop, converge, spec.Options)
			pending = map[int]*pendingRule{}
			ev.Text = text
			if err != nil {
				ev.Kind, ev.Text = "error", err.Error()
			}
			report(ev)
		case <-drift:
			pass("drift")
		case <-resync.C:
			pass("resync")
		}
	}
}

// summary says what a plan did in a line: "recreate app-web-1 (config
// hash changed: environment), create app-worker-2 (missing)".
func summary(p Plan) string {
	var parts []string
	for _, a := range p.Actions {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", strings.TrimSuffix(string(a.Kind), " container"), a.Name, a.Cause))
	}
	return strings.Join(parts, ", ")
}

// relevant says whether a changed file can change the project.
func relevant(name string, files map[string]bool) bool {
	if files[name] {
		return true
	}
	for _, part := range strings.Split(name, string(filepath.Separator)) {
		if part == ".git" {
			return false // git's own churn; the checked-out files tell
		}
	}
	base := filepath.Base(name)
	switch filepath.Ext(base) {
	case ".yml", ".yaml", ".env":
		return true
	}
	return base == ".env" || strings.HasPrefix(base, ".env.")
}

func skipDir(path string) bool {
	base := filepath.Base(path)
	return base == ".git" || base == "node_modules" || (strings.HasPrefix(base, ".") && base != "." && base != "..")
}

// addTree watches dir and its subdirectories.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && skipDir(path) {
			return filepath.SkipDir
		}
		return w.Add(path)
	})
}
