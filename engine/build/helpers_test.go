package build_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/progress"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// writeTree writes files (path -> content) under dir; a path ending in
// "/" is a directory, content "->target" a symlink.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			os.Remove(full)
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newContext makes a build context with a Dockerfile and files.
func newContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"Dockerfile": dockerfile}
	for k, v := range files {
		all[k] = v
	}
	writeTree(t, dir, all)
	return dir
}

// recorder keeps a build's progress events.
type recorder struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *recorder) Event(e progress.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// texts are the final texts of the steps, "#3 [2/3] RUN x: CACHED".
func (r *recorder) steps() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, e := range r.events {
		if e.ParentID == "" && e.Status != progress.Working && strings.HasPrefix(e.ID, "#") {
			_, name, _ := strings.Cut(e.ID, " ")
			out[name] = e.Text
		}
	}
	return out
}

// output is what the RUN steps printed, in order.
func (r *recorder) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		if e.ParentID != "" && e.Status == progress.Working && strings.HasPrefix(e.ID, "#") {
			_, line, _ := strings.Cut(e.Text, " ")
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// doBuild builds dir's Dockerfile into tag, recording progress.
func doBuild(t *testing.T, e *engine.Engine, dir string, opts build.Options) (build.Result, *recorder, error) {
	t.Helper()
	rec := &recorder{}
	opts.Context = dir
	opts.Sink = rec
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e.Builder.Build(ctx, opts)
	return res, rec, err
}

// mustBuild is doBuild that fails the test on an error.
func mustBuild(t *testing.T, e *engine.Engine, dir string, opts build.Options) (build.Result, *recorder) {
	t.Helper()
	res, rec, err := doBuild(t, e, dir, opts)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, rec.output())
	}
	return res, rec
}

// runImage runs a container of ref with cmd (nil: the image's) and
// returns its exit code and what it printed on stdout and stderr.
func runImage(t *testing.T, e *engine.Engine, ref string, cmd ...string) (int, string) {
	t.Helper()
	ctx := context.Background()
	c, err := e.Containers.Create(ctx, container.Config{Image: ref, Cmd: cmd, NetworkMode: "none"})
	if err != nil {
		t.Fatalf("create container of %s: %v", ref, err)
	}
	defer e.Containers.Remove(ctx, c.ID, container.RemoveOptions{Force: true})
	if err := e.Containers.Start(ctx, c.ID); err != nil {
		t.Fatalf("start container of %s: %v", ref, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	code, err := e.Containers.Wait(waitCtx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := e.Containers.Logs(ctx, c.ID, logs.ReadOptions{Tail: -1}, func(en logs.Entry) error {
		b.Write(en.Line)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return code, b.String()
}

// staticProgram builds a static Go program from source into dir/name.
func staticProgram(t *testing.T, dir, name, source string) {
	t.Helper()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"main.go": source, "go.mod": "module prog\n\ngo 1.21\n"})
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// has reports whether some event's text or details contain s.
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if strings.Contains(e.Text, s) || strings.Contains(e.Details, s) {
			return true
		}
	}
	return false
}

// imageListAll lists every image of a store.
var imageListAll = image.ListOptions{}

// imageCreate makes a base image from a layer the same way in any store.
func imageCreate(layer []byte, tag string) image.CreateOptions {
	return image.CreateOptions{
		Layers: []image.NewLayer{{Tar: bytes.NewReader(layer)}},
		Config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		Tags:   []string{tag},
	}
}
