package reconcile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/manifest"
)

func TestDevelopMatcherFollowsRulesAndNewDirectories(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pkg/a.go", "pkg/b.tmp", "top.go"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &manifest.Project{Services: map[string]manifest.Service{
		"app": {Name: "app", Develop: &manifest.Develop{Watch: []manifest.WatchRule{
			{Path: src, Target: "/srv", Action: ActionSync, Ignore: []string{"**/*.tmp"}},
		}}},
	}}
	m, err := newDevelopMatcher(p)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int]*pendingRule{}
	m.match(filepath.Join(src, "pkg"), pending) // a new directory: its files count
	m.match(filepath.Join(dir, "elsewhere.go"), pending)
	if len(pending) != 1 {
		t.Fatalf("pending rules: %d", len(pending))
	}
	got := map[string]string{}
	for _, f := range pending[0].syncFiles() {
		got[f.Target] = f.Local
	}
	if len(got) != 1 || got["/srv/pkg/a.go"] != filepath.Join(src, "pkg", "a.go") {
		t.Fatalf("sync files: %v (b.tmp is ignored, top.go untouched)", got)
	}
	if err := os.Remove(filepath.Join(src, "top.go")); err != nil {
		t.Fatal(err)
	}
	m.match(filepath.Join(src, "top.go"), pending)
	for _, f := range pending[0].syncFiles() {
		if f.Target == "/srv/top.go" && f.Local != "" {
			t.Fatalf("a deleted file is to be copied: %+v", f)
		}
	}
}
