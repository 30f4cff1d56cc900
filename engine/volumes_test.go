package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// testEngine is an engine with the test helpers' methods.
type testEngine struct{ *engine.Engine }

// runOnce runs script in a fresh container with mounts and returns its
// exit code and its log.
func runOnce(t *testing.T, eng *testEngine, mounts []container.Mount, script string) (int, string) {
	t.Helper()
	c := start(t, eng.Engine, container.Config{Cmd: []string{"sh", "-c", script}, Mounts: mounts})
	code := waitExit(t, eng.Engine, c.ID)
	return code, logText(t, eng.Containers, c.ID, logsAll)
}

func TestNamedVolumeIsFilledFromTheImageOnceAndShared(t *testing.T) {
	t.Parallel()
	e := &testEngine{busyboxEngine(t)}
	data := []container.Mount{{Type: container.MountVolume, Source: "data", Target: "/etc"}}
	// First use: the empty volume gets the image's /etc, then is written to.
	code, out := runOnce(t, e, data, "cat /etc/group | head -1; echo kept > /etc/added; rm /etc/passwd")
	if code != 0 || out != "stdout:root:x:0:\n" {
		t.Fatalf("first container: %d %q", code, out)
	}
	// Second use: the volume's content, not the image's again.
	code, out = runOnce(t, e, data, "cat /etc/added; ls /etc/passwd 2>&1")
	if code == 0 || !strings.Contains(out, "stdout:kept\n") || !strings.Contains(out, "No such file") {
		t.Fatalf("second container: %d %q", code, out)
	}
	v, err := e.Volumes.Get("data")
	if err != nil || v.Anonymous {
		t.Fatalf("volume: %+v %v", v, err)
	}
	if users := e.VolumeUsers("data"); len(users) != 2 {
		t.Fatalf("users %v", users)
	}
	if err := e.RemoveVolume(context.Background(), "data"); !errdefs.IsConflict(err) {
		t.Fatalf("remove a volume in use: %v", err)
	}
}

func TestAnonymousVolumeGoesWithRemoveV(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	c := start(t, e, container.Config{Cmd: []string{"sh", "-c", "echo x > /scratch/f"}, Mounts: []container.Mount{{Type: container.MountVolume, Target: "/scratch"}}})
	waitExit(t, e, c.ID)
	name := c.AnonymousVolumes["/scratch"]
	v, err := e.Volumes.Get(name)
	if err != nil || !v.Anonymous {
		t.Fatalf("anonymous volume %q: %+v %v", name, v, err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "f")); err != nil || string(b) != "x\n" {
		t.Fatalf("volume content %q %v", b, err)
	}
	if err := e.Containers.Remove(ctx, c.ID, container.RemoveOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Volumes.Get(name); !errdefs.IsNotFound(err) {
		t.Fatalf("anonymous volume after rm -v: %v", err)
	}
}

func TestBindMountsReadOnlyAndCreateHostPath(t *testing.T) {
	t.Parallel()
	e := &testEngine{busyboxEngine(t)}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(t.TempDir(), "made", "here")
	code, out := runOnce(t, e, []container.Mount{
		{Type: container.MountBind, Source: host, Target: "/host"},
		{Type: container.MountBind, Source: made, Target: "/made", CreateHostPath: true},
	}, "cat /host/in; echo out > /host/out; echo x > /made/f")
	if code != 0 || out != "stdout:from host\n" {
		t.Fatalf("bind: %d %q", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "out\n" {
		t.Fatalf("host sees %q", b)
	}
	if _, err := os.Stat(filepath.Join(made, "f")); err != nil {
		t.Fatalf("create_host_path: %v", err)
	}
	code, out = runOnce(t, e, []container.Mount{{Type: container.MountBind, Source: host, Target: "/host", ReadOnly: true}}, "echo no > /host/ro")
	if code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("read-only bind: %d %q", code, out)
	}
	_, err := e.Containers.Create(context.Background(), container.Config{Image: "busybox", Mounts: []container.Mount{{Type: container.MountBind, Source: filepath.Join(host, "missing"), Target: "/x"}}})
	if err != nil {
		t.Fatal(err) // checked at start, as docker does
	}
}

func TestTmpfsSizeAndMode(t *testing.T) {
	t.Parallel()
	e := &testEngine{busyboxEngine(t)}
	code, out := runOnce(t, e, []container.Mount{{Type: container.MountTmpfs, Target: "/t", TmpfsSize: 1 << 20, TmpfsMode: 0o700}},
		"stat -c %a /t; df -k /t | tail -1 | awk '{print $2}'; grep ' /t ' /proc/mounts | cut -d' ' -f3")
	if code != 0 || out != "stdout:700\nstdout:1024\nstdout:tmpfs\n" {
		t.Fatalf("tmpfs: %d %q", code, out)
	}
}

func TestInitReapsAndForwardsSignals(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	// Behind berth's init (pid 1, from berth's binary mounted read-only),
	// sh gets the stop signal the init forwards; the orphaned sleep is
	// reaped by the init, not left a zombie.
	c := start(t, e, container.Config{Init: true, Cmd: []string{"sh", "-c", "trap 'echo got TERM; exit 9' TERM; echo pid1 $(cat /proc/1/cmdline | tr '\\0' ' '); for i in 1 2 3; do (true &); done; echo spawned; while :; do usleep 10000; done"}})
	var out syncBuffer
	go func() {
		_ = e.Containers.Logs(ctx, c.ID, logs.ReadOptions{Tail: -1, Follow: true}, func(en logs.Entry) error {
			_, err := out.Write(en.Line)
			return err
		})
	}()
	out.WaitFor(t, "pid1 /sbin/berth-init __berth_container_init -- sh -c")
	out.WaitFor(t, "spawned\n")
	// The orphans of (true &) are the init's to reap: no zombie stays.
	testutil.Eventually(t, 10*time.Second, func() error {
		var ps syncBuffer
		if _, err := e.Containers.Exec(ctx, c.ID, container.ExecConfig{Cmd: []string{"ps", "-o", "stat,comm"}}, container.ExecIO{Stdout: &ps}); err != nil {
			return err
		}
		for _, line := range strings.Split(ps.String(), "\n") {
			if strings.HasPrefix(line, "Z") {
				return fmt.Errorf("a zombie: %q", ps.String())
			}
		}
		return nil
	})
	if err := e.Containers.Stop(ctx, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Containers.Get(c.ID)
	if got.State.ExitCode != 9 {
		t.Fatalf("exit code %d, want the trap's 9", got.State.ExitCode)
	}
	out.WaitFor(t, "got TERM\n")
}

// TestImageVolumeGetsAnAnonymousVolumeFilledFromTheImage guards the
// image's VOLUME: an anonymous volume per container, filled with the
// image's content there, removed with the container by rm -v.
func TestImageVolumeGetsAnAnonymousVolumeFilledFromTheImage(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	layer, _ := imagetest.BusyboxLayer(t)
	if _, err := e.Images.Import(context.Background(), bytes.NewReader(layer), image.ImportOptions{
		Reference: "with-volume",
		Config:    v1.Config{Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/etc": {}}, Env: []string{"PATH=/bin"}},
	}); err != nil {
		t.Fatal(err)
	}
	c := start(t, e, container.Config{Image: "with-volume", Cmd: []string{"sh", "-c", "head -1 /etc/passwd; echo new > /etc/new"}})
	if code := waitExit(t, e, c.ID); code != 0 {
		t.Fatalf("exit %d", code)
	}
	name := c.AnonymousVolumes["/etc"]
	v, err := e.Volumes.Get(name)
	if err != nil || !v.Anonymous {
		t.Fatalf("the image's VOLUME got %q: %+v %v", name, v, err)
	}
	if got := logText(t, e.Containers, c.ID, logsAll); !strings.HasPrefix(got, "stdout:root:") {
		t.Fatalf("the volume lacks the image's content: %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "new")); err != nil || string(b) != "new\n" {
		t.Fatalf("written into the volume: %q %v", b, err)
	}
	if err := e.Containers.Remove(context.Background(), c.ID, container.RemoveOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Volumes.Get(name); !errdefs.IsNotFound(err) {
		t.Fatalf("after rm -v: %v", err)
	}
}
