package reconcile

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/berth-dev/berth/manifest"
)

// Develop carries out the effects of Compose's develop.watch rules on a
// service's running containers. The daemon implements it on the engine.
type Develop interface {
	// Sync makes each target path in the service's containers what the
	// matching local file is now (copied in), or absent (it was deleted).
	Sync(ctx context.Context, project, service string, files []SyncFile) error
	// Restart restarts the service's containers.
	Restart(ctx context.Context, project, service string) error
	// Exec runs a command in each of the service's containers.
	Exec(ctx context.Context, project, service string, cmd []string) error
}

// SyncFile is one changed file of a sync rule: where it is on the host and
// where it goes in the containers. Local is "" when the file was deleted.
type SyncFile struct {
	Local  string `json:"local,omitempty"`
	Target string `json:"target"`
}

// DevelopActions are the develop.watch action names.
const (
	ActionSync        = "sync"
	ActionRebuild     = "rebuild"
	ActionSyncRestart = "sync+restart"
	ActionSyncExec    = "sync+exec"
)

// pendingRule is a rule that matched changes, with the files it matched.
type pendingRule struct {
	service string
	rule    manifest.WatchRule
	files   map[string]bool
}

// developMatcher matches changed paths against a project's rules.
type developMatcher struct {
	rules []ruleMatcher
}

type ruleMatcher struct {
	service string
	rule    manifest.WatchRule
	ignore  *patternmatcher.PatternMatcher
	include *patternmatcher.PatternMatcher
}

// newDevelopMatcher compiles the develop.watch rules of p.
func newDevelopMatcher(p *manifest.Project) (*developMatcher, error) {
	m := &developMatcher{}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Develop == nil {
			continue
		}
		for _, r := range s.Develop.Watch {
			rm := ruleMatcher{service: name, rule: r}
			var err error
			if rm.ignore, err = patternmatcher.New(r.Ignore); err != nil {
				return nil, fmt.Errorf("service %s: develop.watch ignore: %w", name, err)
			}
			if len(r.Include) > 0 {
				if rm.include, err = patternmatcher.New(r.Include); err != nil {
					return nil, fmt.Errorf("service %s: develop.watch include: %w", name, err)
				}
			}
			m.rules = append(m.rules, rm)
		}
	}
	return m, nil
}

// dirs are the directories the rules watch.
func (m *developMatcher) dirs() []string {
	var out []string
	for _, r := range m.rules {
		dir := r.rule.Path
		if info, err := os.Stat(dir); err == nil && !info.IsDir() {
			dir = filepath.Dir(dir)
		}
		out = append(out, dir)
	}
	return out
}

// match adds path to the pending rules it concerns. A new directory
// brings its whole content: files made in it before its own watch was
// added have no events of their own.
func (m *developMatcher) match(path string, pending map[int]*pendingRule) {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				m.matchFile(p, pending)
			}
			return nil
		})
		return
	}
	m.matchFile(path, pending)
}

func (m *developMatcher) matchFile(path string, pending map[int]*pendingRule) {
	for i, r := range m.rules {
		if !r.covers(path) {
			continue
		}
		p := pending[i]
		if p == nil {
			p = &pendingRule{service: r.service, rule: r.rule, files: map[string]bool{}}
			pending[i] = p
		}
		p.files[path] = true
	}
}

// covers says whether path is under the rule's path and not left out by
// its ignore and include patterns.
func (r ruleMatcher) covers(path string) bool {
	rel, err := filepath.Rel(r.rule.Path, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return false
	}
	if rel == "." {
		return true
	}
	if ok, _ := r.ignore.MatchesOrParentMatches(rel); ok {
		return false
	}
	if r.include != nil {
		if ok, _ := r.include.MatchesOrParentMatches(rel); !ok {
			return false
		}
	}
	return true
}

// initialSync copies into the services' containers, for each sync rule
// with initial_sync, every file its path holds (its patterns applied), as
// docker compose does when its watch starts: the containers then start
// from the local files, not from what the image had. Only the files are
// copied; restarts and execs wait for changes.
func initialSync(ctx context.Context, project string, m *developMatcher, dev Develop) (string, error) {
	var done []string
	for _, r := range m.rules {
		switch r.rule.Action {
		case ActionSync, ActionSyncRestart, ActionSyncExec:
		default:
			continue
		}
		if !r.rule.InitialSync {
			continue
		}
		p := &pendingRule{service: r.service, rule: r.rule, files: map[string]bool{}}
		_ = filepath.WalkDir(r.rule.Path, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && r.covers(path) {
				p.files[path] = true
			}
			return nil
		})
		files := p.syncFiles()
		if len(files) == 0 {
			continue
		}
		if err := dev.Sync(ctx, project, r.service, files); err != nil {
			return strings.Join(done, ", "), fmt.Errorf("service %s: initial sync: %w", r.service, err)
		}
		done = append(done, fmt.Sprintf("initial sync of %d file(s) to %s", len(files), r.service))
	}
	return strings.Join(done, ", "), nil
}

// syncFiles are the rule's changed files with their targets.
func (p *pendingRule) syncFiles() []SyncFile {
	var out []SyncFile
	for path := range p.files {
		rel, err := filepath.Rel(p.rule.Path, path)
		if err != nil {
			continue
		}
		f := SyncFile{Target: filepath.Join(p.rule.Target, rel)}
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			f.Local = path
		} else if err == nil {
			continue // a directory: its files come as their own events
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// runDevelop carries out the pending rules: syncs, restarts and execs
// through dev, rebuilds as a pass that builds the service's image.
func runDevelop(ctx context.Context, project string, p *manifest.Project, pending map[int]*pendingRule, dev Develop, converge Converger, opts Options) (string, error) {
	var done []string
	keys := make([]int, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		r := pending[k]
		switch r.rule.Action {
		case ActionRebuild:
			o := opts
			o.Services, o.NoDeps, o.Build = []string{r.service}, true, BuildAlways
			if _, err := converge(ctx, p, o, nil); err != nil {
				return strings.Join(done, ", "), fmt.Errorf("service %s: rebuild: %w", r.service, err)
			}
			done = append(done, "rebuilt "+r.service)
			continue
		case ActionSync, ActionSyncRestart, ActionSyncExec:
		default:
			return strings.Join(done, ", "), fmt.Errorf("service %s: develop.watch action %q is not supported", r.service, r.rule.Action)
		}
		files := r.syncFiles()
		if err := dev.Sync(ctx, project, r.service, files); err != nil {
			return strings.Join(done, ", "), fmt.Errorf("service %s: sync: %w", r.service, err)
		}
		done = append(done, fmt.Sprintf("synced %d file(s) to %s", len(files), r.service))
		switch r.rule.Action {
		case ActionSyncRestart:
			if err := dev.Restart(ctx, project, r.service); err != nil {
				return strings.Join(done, ", "), fmt.Errorf("service %s: restart: %w", r.service, err)
			}
			done = append(done, "restarted "+r.service)
		case ActionSyncExec:
			if err := dev.Exec(ctx, project, r.service, r.rule.Exec); err != nil {
				return strings.Join(done, ", "), fmt.Errorf("service %s: exec: %w", r.service, err)
			}
			done = append(done, "ran "+strings.Join(r.rule.Exec, " ")+" in "+r.service)
		}
	}
	return strings.Join(done, ", "), nil
}
