// Package enginetest opens real engines for tests: a fresh state root, a
// busybox image in its store, and a test binary that doubles as berth's
// re-executed entry points (monitor, container setup).
package enginetest

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// Main runs a test binary's tests, unless the binary was re-executed as one
// of berth's entry points, which it then plays. Call it from TestMain.
func Main(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case runtime.InitEntry:
			runtime.Init()
			return
		case monitor.Entry:
			container.MonitorMain("test")
			return
		case container.InitEntry:
			container.InitMain()
			return
		}
	}
	code := m.Run()
	imagetest.Cleanup()
	testutil.RemoveBuiltBinary()
	os.Exit(code)
}

// Open opens an engine on a fresh state root (with the leak check of
// testutil.StateRoot), closes it at the end of the test, and stops its
// monitor once no container runs.
func Open(t *testing.T) *engine.Engine {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	e := OpenRoot(t, root, "")
	t.Cleanup(func() { Teardown(t, e) })
	return e
}

// OpenRoot opens an engine on root with binary (default: the test
// binary) as its monitor and setup stage, and nothing else: the caller
// closes it, or hands it to Teardown. Tests that reopen a root (a daemon
// restart, an upgrade) use it.
func OpenRoot(t *testing.T, root, binary string) *engine.Engine {
	t.Helper()
	e, err := TryOpenRoot(root, binary)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TryOpenRoot is OpenRoot with the error returned, for a cleanup that
// must take down what a test left after its own open failed.
func TryOpenRoot(root, binary string) (*engine.Engine, error) {
	if binary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		binary = self
	}
	return engine.Open(context.Background(), engine.Options{Root: root, Binary: binary})
}

// Teardown removes whatever the test left in e (containers, networks),
// stops its monitor, closes it, and waits until the root leaves nothing
// on the host, so the leak check judges what removal leaves, not what
// the test forgot.
func Teardown(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	for _, c := range e.Containers.List(container.ListOptions{All: true}) {
		if err := e.Containers.Remove(ctx, c.ID, container.RemoveOptions{Force: true, Volumes: true}); err != nil {
			t.Errorf("cleanup: remove %s: %v", c.Name, err)
		}
	}
	for _, n := range e.Networks.List(nil) {
		if err := e.RemoveNetwork(ctx, n.Name); err != nil {
			t.Errorf("cleanup: remove network %s: %v", n.Name, err)
		}
	}
	if err := e.Containers.ShutdownMonitor(ctx); err != nil {
		t.Errorf("cleanup: monitor: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("cleanup: close engine: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if leaks := testutil.Leaks(e.Root); len(leaks) > 0 {
			return &leakError{leaks}
		}
		return nil
	})
}

type leakError struct{ leaks []string }

func (e *leakError) Error() string { return "still there: " + joinLines(e.leaks) }

func joinLines(l []string) string {
	var b bytes.Buffer
	for _, s := range l {
		b.WriteString("\n  " + s)
	}
	return b.String()
}

// Busybox imports a busybox-static root filesystem as the image ref (with
// cmd sh) and returns its ID.
func Busybox(t *testing.T, e *engine.Engine, ref string) string {
	t.Helper()
	layer, _ := imagetest.BusyboxLayer(t)
	img, err := e.Images.Import(context.Background(), bytes.NewReader(layer), image.ImportOptions{
		Reference: ref,
		Config:    v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}
