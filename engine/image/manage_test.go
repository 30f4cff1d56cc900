package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// smallLayer is a one-file layer whose content names it.
func smallLayer(t testing.TB, name string) []byte {
	return makeTar(t, dir("data/"), file("data/"+name, "content of "+name+"\n"))
}

func importAs(t *testing.T, s *Store, layer []byte, ref string) Image {
	t.Helper()
	img, err := s.Import(context.Background(), bytes.NewReader(layer), ImportOptions{Reference: ref})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	return img
}

func storeContent(t *testing.T, s *Store) (blobs, snapshots int) {
	t.Helper()
	b, err := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := os.ReadDir(filepath.Join(s.Dir(), "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	return len(b), len(sn)
}

func TestReferencesAreNormalisedAsDockerDoes(t *testing.T) {
	t.Parallel()
	cases := map[string][2]string{
		"busybox":                       {"docker.io/library/busybox:latest", "busybox:latest"},
		"library/busybox:1.36":          {"docker.io/library/busybox:1.36", "busybox:1.36"},
		"docker.io/user/app":            {"docker.io/user/app:latest", "user/app:latest"},
		"index.docker.io/user/app:v1":   {"docker.io/user/app:v1", "user/app:v1"},
		"localhost:5000/app":            {"localhost:5000/app:latest", "localhost:5000/app:latest"},
		"127.0.0.1:5000/a/b:c":          {"127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"},
		"ghcr.io/o/r@sha256:" + hex64(): {"ghcr.io/o/r@sha256:" + hex64(), "ghcr.io/o/r@sha256:" + hex64()},
	}
	for in, want := range cases {
		r, err := ParseReference(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if r.String() != want[0] || r.Familiar() != want[1] {
			t.Errorf("%s: got %s / %s, want %s / %s", in, r.String(), r.Familiar(), want[0], want[1])
		}
	}
	for _, bad := range []string{"", "Busybox", "a b", "busybox:", ":tag", "upper/CASE:x", "a@sha256:short"} {
		if _, err := ParseReference(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: want an invalid-argument error, got %v", bad, err)
		}
	}
}

func hex64() string { return "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }

func TestTagListRemoveAsDockerDoes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	img := importAs(t, s, smallLayer(t, "a"), "app:1")
	if err := s.Tag(ctx, "app:1", "localhost:5000/app:2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, shortID(img.ID), "other"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(context.Background(), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker.io/library/app:1", "docker.io/library/other:latest", "localhost:5000/app:2"}
	if len(list) != 1 || !slices.Equal(list[0].RepoTags, want) || list[0].ID != img.ID {
		t.Fatalf("list %+v, want one image %s named %v", list, img.ID, want)
	}
	filtered, _ := s.List(context.Background(), ListOptions{References: []string{"localhost:5000/*"}})
	if len(filtered) != 1 {
		t.Fatalf("reference filter found %d images", len(filtered))
	}
	if _, err := s.Remove(ctx, img.ID, RemoveOptions{}); !errdefs.IsConflict(err) {
		t.Fatalf("rm by ID of an image with three names: want a conflict, got %v", err)
	}
	got, err := s.Remove(ctx, "app:1", RemoveOptions{})
	if err != nil || len(got) != 1 || got[0].Untagged != "app:1" {
		t.Fatalf("rm app:1 = %+v, %v; want only untagged", got, err)
	}
	got, err = s.Remove(ctx, img.ID, RemoveOptions{Force: true})
	if err != nil || len(got) != 3 || got[2].Deleted != img.ID {
		t.Fatalf("rm -f ID = %+v, %v", got, err)
	}
	if _, err := s.Resolve(context.Background(), "other"); !errdefs.IsNotFound(err) {
		t.Fatalf("resolve after rm: %v", err)
	}
	if b, sn := storeContent(t, s); b != 0 || sn != 0 {
		t.Fatalf("rm left %d blobs and %d snapshots", b, sn)
	}
	if _, err := s.Remove(ctx, "nothing:here", RemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("rm of a missing image: %v", err)
	}
}

// TestLeasedImagesSurvivePruneAndRm guards the container engine's images:
// an image a container leases is neither pruned nor removed, even across
// a restart of the store, and goes once released.
func TestLeasedImagesSurvivePruneAndRm(t *testing.T) {
	t.Parallel()
	s, root := newStore(t, Options{})
	ctx := context.Background()
	used := importAs(t, s, smallLayer(t, "used"), "")
	tagged := importAs(t, s, smallLayer(t, "tagged"), "tagged:1")
	dangling := importAs(t, s, smallLayer(t, "dangling"), "")
	if _, err := s.Lease(ctx, "container1", used.ID); err != nil {
		t.Fatal(err)
	}
	// An image leased in memory is as safe while the store is open.
	if _, err := s.LeaseInMemory(ctx, "container2", used.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 1 || rep.ImagesDeleted[0].Deleted != dangling.ID || rep.SpaceReclaimed <= 0 {
		t.Fatalf("prune: %+v, want only %s deleted", rep, dangling.ID)
	}
	if rep, err = s.Prune(ctx, PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 2 || rep.ImagesDeleted[1].Deleted != tagged.ID {
		t.Fatalf("prune -a: %+v, want %s untagged and deleted", rep, tagged.ID)
	}
	if _, err := s.Remove(ctx, used.ID, RemoveOptions{Force: true}); !errdefs.IsConflict(err) {
		t.Fatalf("rm -f of a leased image: want a conflict, got %v", err)
	}
	if err := s.Release(ctx, "container1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, used.ID, RemoveOptions{Force: true}); !errdefs.IsConflict(err) {
		t.Fatalf("rm -f of an image leased in memory: want a conflict, got %v", err)
	}
	if _, err := s.Lease(ctx, "container1", used.ID); err != nil {
		t.Fatal(err)
	}
	dirs, err := s.Snapshots(ctx, used.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "data", "used")); string(b) != "content of used\n" {
		t.Fatalf("leased image's snapshot: %q", b)
	}

	// Leases are on disk: a new store on the root still knows them; not
	// those in memory.
	s.Close()
	s2, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if l := s2.Leases(); !slices.Equal(l["container1"], []string{used.ID}) || len(l) != 1 {
		t.Fatalf("leases after reopen: %v, want container1's alone", l)
	}
	if rep, _ := s2.Prune(ctx, PruneOptions{All: true}); len(rep.ImagesDeleted) != 0 {
		t.Fatalf("prune after reopen deleted %+v", rep.ImagesDeleted)
	}
	if err := s2.Release(ctx, "container1"); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s2.Prune(ctx, PruneOptions{All: true}); len(rep.ImagesDeleted) != 1 {
		t.Fatalf("prune after release: %+v", rep)
	}
	if b, sn := storeContent(t, s2); b != 0 || sn != 0 {
		t.Fatalf("prune left %d blobs and %d snapshots", b, sn)
	}
}

// TestPruneDuringImportsLosesNothing guards the order of index changes and
// garbage collection: images being imported while prune runs are complete
// afterwards.
func TestPruneDuringImportsLosesNothing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Prune(ctx, PruneOptions{}); err != nil {
					errs <- fmt.Errorf("pruner %d: %w", w, err)
					return
				}
			}
		}()
	}
	var importers sync.WaitGroup
	for i := range 4 {
		importers.Add(1)
		go func() {
			defer importers.Done()
			for j := range 5 {
				name := fmt.Sprintf("img%d-%d", i, j)
				layer := smallLayer(t, name)
				if _, err := s.Import(ctx, bytes.NewReader(layer), ImportOptions{Reference: name}); err != nil {
					errs <- fmt.Errorf("import %s: %w", name, err)
				}
			}
		}()
	}
	importers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range 4 {
		for j := range 5 {
			name := fmt.Sprintf("img%d-%d", i, j)
			dirs, err := s.Snapshots(ctx, name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dirs[0], "data", name)); string(b) != "content of "+name+"\n" {
				t.Fatalf("%s: snapshot content %q", name, b)
			}
		}
	}
}

func TestCreateIsReproducibleAndStacksOnItsBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	layer, _ := imagetest.BusyboxLayer(t)
	build := func(s *Store) Image {
		_, err := s.Create(ctx, CreateOptions{
			Layers:  []NewLayer{{Tar: bytes.NewReader(layer)}},
			History: []v1.History{{CreatedBy: "ADD busybox /", Comment: "base"}},
			Tags:    []string{"base:1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Create(ctx, CreateOptions{
			Base:   "base:1",
			Layers: []NewLayer{{Tar: bytes.NewReader(smallLayer(t, "app"))}},
			Config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"A=1"}, WorkingDir: "/data"},
			History: []v1.History{
				{CreatedBy: "COPY app /data/app"},
				{CreatedBy: "CMD [\"/bin/sh\"]", EmptyLayer: true},
			},
			Tags:  []string{"app:1"},
			Lease: "build-1",
		})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	s1, _ := newStore(t, Options{})
	s2, _ := newStore(t, Options{})
	a, b := build(s1), build(s2)
	if a.ID != b.ID || a.Manifest.Digest != b.Manifest.Digest {
		t.Fatalf("two builds differ: %s/%s vs %s/%s", a.ID, a.Manifest.Digest, b.ID, b.Manifest.Digest)
	}
	if a.Config.Config.WorkingDir != "/data" || len(a.Layers) != 2 {
		t.Fatalf("image %+v", a)
	}
	dirs, err := s1.Snapshots(ctx, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("snapshots %v", dirs)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "data", "app")); err != nil {
		t.Fatalf("top snapshot lacks the new layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirs[1], "bin", "busybox")); err != nil {
		t.Fatalf("bottom snapshot lacks the base: %v", err)
	}
	if rep, _ := s1.Prune(ctx, PruneOptions{All: true}); len(rep.ImagesDeleted) != 2 {
		t.Fatalf("prune -a removed %+v; want base only (untag + delete), app is leased to the build", rep.ImagesDeleted)
	}
	hist, err := s1.History(context.Background(), "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].CreatedBy != `CMD ["/bin/sh"]` || hist[0].Size != 0 || hist[0].ID != a.ID ||
		hist[1].Size != int64(len("content of app\n")) || hist[2].ID != "<missing>" || hist[2].Comment != "base" {
		t.Fatalf("history %+v", hist)
	}
	d, err := s1.Inspect(context.Background(), "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.RootFS.Layers) != 2 || d.Config.Env[0] != "A=1" || d.Created != (time.Time{}).Format(time.RFC3339Nano) {
		t.Fatalf("inspect %+v", d)
	}
}

func TestStoreIsLockedToOneProcess(t *testing.T) {
	t.Parallel()
	_, root := newStore(t, Options{})
	if _, err := Open(root, Options{}); !errdefs.IsUnavailable(err) {
		t.Fatalf("second open: want unavailable, got %v", err)
	}
}

// TestOpenCollectsWhatACrashLeftBehind: content added by an operation that
// never recorded its image (the daemon died) is removed when the store
// opens again; the images that were recorded keep theirs.
func TestOpenCollectsWhatACrashLeftBehind(t *testing.T) {
	t.Parallel()
	s, root := newStore(t, Options{})
	kept := importAs(t, s, smallLayer(t, "kept"), "kept:1")
	// What a crash mid-import leaves: a layer blob and its snapshot,
	// unreferenced, plus staging files.
	tr := s.begin()
	if _, _, err := s.addLayer(context.Background(), tr, bytes.NewReader(smallLayer(t, "orphan"))); err != nil {
		t.Fatal(err)
	}
	tr.end(false)
	os.WriteFile(filepath.Join(s.Dir(), "tmp", "blob-123"), []byte("partial"), 0o600)
	if b, sn := storeContent(t, s); b != 4 || sn != 2 {
		t.Fatalf("before reopen: %d blobs, %d snapshots", b, sn)
	}
	s.Close()
	s2, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if b, sn := storeContent(t, s2); b != 3 || sn != 1 {
		t.Fatalf("after reopen: %d blobs, %d snapshots; want the kept image's 3 and 1", b, sn)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s2.Dir(), "tmp")); len(tmp) != 0 {
		t.Fatalf("staging left: %v", tmp)
	}
	if _, err := s2.Snapshots(context.Background(), kept.ID); err != nil {
		t.Fatal(err)
	}
}
