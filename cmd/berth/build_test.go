package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// newBuildProject copies testdata/build/NAME into a directory of its own,
// with a state root, as newProject does for the e2e projects.
func newBuildProject(t *testing.T, name string) *project {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	dir := filepath.Join(t.TempDir(), "bld"+name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "build", name))); err != nil {
		t.Fatal(err)
	}
	p := &project{t: t, name: "bld" + name, dir: dir, root: root}
	t.Cleanup(func() {
		_, _, _ = p.berthErr("-p", p.name, "down", "-v", "-t", "1")
		stopDaemonAndMonitor(t, root)
	})
	return p
}

// TestBuildAndUpBuild builds a Compose service's image with berth build,
// runs it with up, and rebuilds it with up --build when a file changes.
func TestBuildAndUpBuild(t *testing.T) {
	p := newBuildProject(t, "compose")
	p.importBusybox()

	_, stderr, err := p.berthErr("--progress", "plain", "build")
	if err != nil {
		t.Fatalf("berth build: %v\n%s", err, stderr)
	}
	for _, want := range []string{"[web 2/3] COPY greeting.txt /greeting.txt  DONE", "[web 3/3] RUN echo \"$GREETING\" > /arg.txt  DONE", "[web] naming to bldcompose-web", "Service web  Built"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("build output lacks %q:\n%s", want, stderr)
		}
	}
	var inspect []struct {
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(p.berth("image", "inspect", "extra/web:v1")), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	labels := inspect[0].Config.Labels
	if labels["com.docker.compose.project"] != p.name || labels["com.docker.compose.service"] != "web" || labels["org.example.built-by"] != "berth" {
		t.Errorf("labels %v", labels)
	}

	// Nothing changed: nothing runs.
	_, stderr, _ = p.berthErr("--progress", "plain", "build")
	for _, want := range []string{"[web 2/3] COPY greeting.txt /greeting.txt  CACHED", "[web 3/3] RUN echo \"$GREETING\" > /arg.txt  CACHED"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("a rebuild with nothing changed ran steps: no %q in\n%s", want, stderr)
		}
	}

	p.berth("up", "-d")
	waitLogs(t, p, "greeting v1", "hello from compose")

	// What the container changed, and an image made of it.
	container := p.name + "-web-1"
	if diff := p.berth("container", "diff", container); diff != "A /started\n" {
		t.Errorf("container diff:\n%s", diff)
	}
	id := strings.TrimSpace(p.berth("container", "commit", "-m", "snapshot", "-c", `CMD ["cat", "/started"]`, container, "snap:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if hist := p.berth("image", "history", "--no-trunc", "snap:1"); !strings.Contains(hist, "snapshot") {
		t.Errorf("history of the commit:\n%s", hist)
	}

	// A changed file: up --build rebuilds and replaces the container.
	if err := os.WriteFile(filepath.Join(p.dir, "web", "greeting.txt"), []byte("greeting v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.berth("up", "-d", "--build")
	waitLogs(t, p, "greeting v2", "hello from compose")

	// --build-arg overrides build.args; the image it makes is checked by
	// running it.
	p.berth("build", "-q", "--build-arg", "GREETING=from the flag")
	p.berth("up", "-d")
	waitLogs(t, p, "greeting v2", "from the flag")

	// A broken Dockerfile fails the command, naming the line.
	os.WriteFile(filepath.Join(p.dir, "web", "Dockerfile"), []byte("FROM busybox\nCOPY missing /x\n"), 0o644)
	_, stderr, err = p.berthErr("build")
	if err == nil || !strings.Contains(stderr, "Dockerfile:2") || !strings.Contains(stderr, `"missing": not found`) {
		t.Errorf("a broken build: %v\n%s", err, stderr)
	}
}

// waitLogs waits until web's logs hold every text.
func waitLogs(t *testing.T, p *project, texts ...string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		out := p.berth("logs", "web")
		for _, s := range texts {
			if !strings.Contains(out, s) {
				return &logsError{out}
			}
		}
		return nil
	})
}
