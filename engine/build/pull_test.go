package build_test

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
)

// TestFromPullsMissingBasesAndPullForcesIt builds FROM an image that is
// only in a (loopback) registry: the build pulls it; with Pull the build
// pulls again and takes the registry's newer image.
func TestFromPullsMissingBasesAndPullForcesIt(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	ctx := context.Background()
	ref := reg.Host + "/base:1"
	if err := e.Images.Tag(ctx, "busybox", ref); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Images.Push(ctx, ref, image.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Images.Remove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := newContext(t, "FROM "+ref+"\nRUN echo on the pulled base > /x\n", nil)
	_, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"pulled:1"}})
	if !rec.has("Pulled") {
		t.Error("no pull event")
	}
	pulled, err := e.Images.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("the base was not pulled: %v", err)
	}

	// The registry gets a newer base; only Pull takes it.
	newer := newContext(t, "FROM busybox\nRUN echo newer > /newer\n", nil)
	mustBuild(t, e, newer, build.Options{Tags: []string{ref}})
	if _, err := e.Images.Push(ctx, ref, image.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Images.Tag(ctx, pulled.ID, ref); err != nil { // the store's copy is the old base again
		t.Fatal(err)
	}
	if r, _ := mustBuild(t, e, dir, build.Options{Tags: []string{"pulled:1"}}); r.Cached != r.Steps {
		t.Errorf("without Pull the store's base changed: %+v", r)
	}
	mustBuild(t, e, dir, build.Options{Tags: []string{"pulled:1"}, Pull: true})
	if code, out := runImage(t, e, "pulled:1", "cat", "/newer"); code != 0 || out != "newer\n" {
		t.Errorf("with Pull the build used the old base: %d %q", code, out)
	}
}
