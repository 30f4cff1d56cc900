package api_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/internal/progress"
)

// The test binary plays berth's re-executed entry points: RUN steps and
// containers start through it.
func TestMain(m *testing.M) { enginetest.Main(m) }

// serveBuilds serves an engine's build endpoints on a unix socket.
func serveBuilds(t *testing.T, e *engine.Engine) *api.BuildClient {
	t.Helper()
	mux := http.NewServeMux()
	api.RegisterBuildRoutes(mux, e.Builder, e.Containers, e.Images)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := api.NewClient("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Builds()
}

type buildEvents struct {
	mu  sync.Mutex
	all []progress.Event
}

func (ev *buildEvents) Event(e progress.Event) {
	ev.mu.Lock()
	ev.all = append(ev.all, e)
	ev.mu.Unlock()
}

func (ev *buildEvents) find(f func(progress.Event) bool) bool {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.ContainsFunc(ev.all, f)
}

func TestBuildThroughTheAPIStreamsStepsAndKeepsErrorClasses(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	bc := serveBuilds(t, e)
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo streamed line\nCOPY f /f\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "f"), []byte("f"), 0o644)
	ev := &buildEvents{}
	res, err := bc.Build(ctx, build.Options{Context: dir, Tags: []string{"api:1"}, Name: "web", Sink: ev})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.Images.Resolve(ctx, "api:1")
	if err != nil || img.ID != res.ImageID || res.Steps != 2 {
		t.Fatalf("result %+v, image %s (%v)", res, img.ID, err)
	}
	if !ev.find(func(e progress.Event) bool {
		return strings.HasSuffix(e.ID, "[web 2/3] RUN echo streamed line") && strings.HasPrefix(e.Text, build.TextDone)
	}) {
		t.Errorf("no step event: %+v", ev.all)
	}
	if !ev.find(func(e progress.Event) bool { return e.ParentID != "" && strings.HasSuffix(e.Text, " streamed line") }) {
		t.Error("the RUN's output was not streamed")
	}

	// Error classes cross the socket.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nBOGUS x\n"), 0o644)
	if _, err := bc.Build(ctx, build.Options{Context: dir}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("bad Dockerfile through the API: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN exit 7\n"), 0o644)
	if _, err := bc.Build(ctx, build.Options{Context: dir}); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "exit code: 7") {
		t.Errorf("failing RUN through the API: %v", err)
	}

	// A client that goes away cancels its build, and the build leaves
	// nothing behind (the leak check of enginetest.Open looks).
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo started; sleep 60\n"), 0o644)
	cctx, cancel := context.WithCancel(ctx)
	started := &buildEvents{}
	done := make(chan error, 1)
	go func() {
		_, err := bc.Build(cctx, build.Options{Context: dir, Sink: progress.SinkFunc(func(e progress.Event) {
			started.Event(e)
			if strings.HasSuffix(e.Text, " started") {
				cancel()
			}
		})})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled build finished")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the build did not stop when its client went away")
	}
	cancel()

	rep, err := bc.Prune(ctx)
	if err != nil || rep.Entries == 0 {
		t.Errorf("prune: %+v %v", rep, err)
	}
	if _, err := e.Images.Resolve(ctx, "api:1"); err != nil {
		t.Errorf("prune took a tagged image: %v", err)
	}
}

func TestContainerDiffAndCommit(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	bc := serveBuilds(t, e)
	ctx := context.Background()
	c, err := e.Containers.Create(ctx, container.Config{
		Name: "changer", Image: "busybox", NetworkMode: "none", Env: []string{"FROM_CONTAINER=1"},
		Cmd: []string{"sh", "-c", "echo new > /new.txt && rm /etc/motd && echo extra >> /etc/group && mkdir /data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if changes, err := bc.Changes(ctx, "changer"); err != nil || len(changes) != 0 {
		t.Fatalf("changes of a container never started: %v %v", changes, err)
	}
	if err := e.Containers.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if code, err := e.Containers.Wait(waitCtx, c.ID); err != nil || code != 0 {
		t.Fatalf("container exited %d (%v)", code, err)
	}
	changes, err := bc.Changes(ctx, "changer")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ch := range changes {
		lines = append(lines, ch.Kind.String()+" "+ch.Path)
	}
	want := "A /data,C /etc,C /etc/group,D /etc/motd,A /new.txt"
	if strings.Join(lines, ",") != want {
		t.Fatalf("diff:\n %v\nwant\n %s", lines, want)
	}
	if _, err := bc.Changes(ctx, "nobody"); !errdefs.IsNotFound(err) {
		t.Errorf("diff of a missing container: %v", err)
	}

	img, err := bc.Commit(ctx, "changer", build.CommitOptions{
		Reference: "committed:1", Comment: "by hand", Author: "Ann <ann@example.com>",
		Changes: []string{`CMD ["sh", "-c", "cat /new.txt; ls /etc/motd 2>&1; echo $FROM_CONTAINER $X"]`, "ENV X=2", "EXPOSE 8080"},
		Pause:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Author != "Ann <ann@example.com>" {
		t.Errorf("author %q", img.Config.Author)
	}
	hist, _ := e.Images.History(ctx, "committed:1")
	if len(hist) == 0 || hist[0].Comment != "by hand" || !strings.Contains(hist[0].CreatedBy, "echo new > /new.txt") {
		t.Errorf("history %+v", hist)
	}
	if _, ok := img.Config.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ports %v", img.Config.Config.ExposedPorts)
	}
	r, err := e.Containers.Create(ctx, container.Config{Name: "from-commit", Image: "committed:1", NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Containers.Start(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if code, err := e.Containers.Wait(waitCtx, r.ID); err != nil || code != 0 {
		t.Fatalf("committed image exited %d (%v)", code, err)
	}
	out := containerOutput(t, e, r.ID)
	if !strings.HasPrefix(out, "new\n") || !strings.Contains(out, "No such file") || !strings.HasSuffix(out, "1 2\n") {
		t.Errorf("committed image printed %q", out)
	}
	// The engine's mount targets are not part of the commit.
	p, _ := e.Images.SnapshotPath(img.Layers[len(img.Layers)-1].DiffID)
	for _, stub := range []string{"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(p, stub)); err == nil {
			t.Errorf("the commit's layer holds the mount target /%s", stub)
		}
	}

	if _, err := bc.Commit(ctx, "changer", build.CommitOptions{Changes: []string{"RUN true"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("commit --change RUN: %v", err)
	}
}

// containerOutput is what a container printed.
func containerOutput(t *testing.T, e *engine.Engine, id string) string {
	t.Helper()
	var b strings.Builder
	err := e.Containers.Logs(context.Background(), id, logs.ReadOptions{Tail: -1}, func(en logs.Entry) error {
		b.Write(en.Line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
