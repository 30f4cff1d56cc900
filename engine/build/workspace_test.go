package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestOpeningAfterACrashCleansUp guards against a daemon killed in the
// middle of a step: the next builder to open the root takes away the
// step's overlay mount and scratch directory (StateRoot's leak check
// fails the test on a mount left behind).
func TestOpeningAfterACrashCleansUp(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	images, err := image.Open(root, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer images.Close()
	ctx := context.Background()
	b, err := New(ctx, Config{Root: root, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := b.mountState(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws.rootfs, "half-done"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The process "dies" here: nothing releases ws.
	if _, err := New(ctx, Config{Root: root, Images: images}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ws.dir); !os.IsNotExist(err) {
		t.Errorf("the step's directory is still there (%v)", err)
	}
	if mounts, _ := mountsUnder(filepath.Join(root, "build", "tmp")); len(mounts) != 0 {
		t.Errorf("mounts left: %v", mounts)
	}
}
