package image

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestListHidesImagesHeldOnlyByTheBuildCache guards `image ls` against
// the build cache's intermediate images: untagged, leased only by the
// cache, they show with -a only.
func TestListHidesImagesHeldOnlyByTheBuildCache(t *testing.T) {
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	step, err := s.Create(ctx, CreateOptions{Config: v1.Config{Cmd: []string{"step"}}, Lease: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	named, err := s.Create(ctx, CreateOptions{Config: v1.Config{Cmd: []string{"final"}}, Tags: []string{"app:1"}, Lease: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(opts ListOptions) map[string]bool {
		list, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, img := range list {
			out[img.ID] = true
		}
		return out
	}
	if got := ids(ListOptions{HideHeldOnlyBy: "cache"}); got[step.ID] || !got[named.ID] {
		t.Fatalf("hiding the cache's images: %v", got)
	}
	if got := ids(ListOptions{}); !got[step.ID] || !got[named.ID] {
		t.Fatalf("listing all: %v", got)
	}
	if _, err := s.Lease(ctx, "container-1", step.ID); err != nil {
		t.Fatal(err)
	}
	if got := ids(ListOptions{HideHeldOnlyBy: "cache"}); !got[step.ID] {
		t.Fatal("an image a container also holds was hidden")
	}
}
