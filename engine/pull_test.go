package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
)

// TestPulledImageRuns is the whole path of an image from a registry into
// a container: push busybox from one engine to a real registry on
// loopback, pull it into an empty engine, and run busybox echo from it.
func TestPulledImageRuns(t *testing.T) {
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	ctx := context.Background()
	ref := reg.Host + "/tools/busybox:1"

	src := enginetest.Open(t)
	enginetest.Busybox(t, src, ref)
	if _, err := src.Images.Push(ctx, ref, image.PushOptions{}); err != nil {
		t.Fatal(err)
	}

	dst := enginetest.Open(t)
	if _, err := dst.Images.Pull(ctx, ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := dst.Containers.Create(ctx, container.Config{
		Name: "pulled", Image: ref, Cmd: []string{"busybox", "echo", "hello from a pulled image"},
		NetworkMode: "none",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Containers.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if code, err := dst.Containers.Wait(waitCtx, c.ID); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	if out := readLogs(t, dst.Containers, c.ID); !strings.Contains(out, "stdout:hello from a pulled image\n") {
		t.Fatalf("logs: %q", out)
	}
}
