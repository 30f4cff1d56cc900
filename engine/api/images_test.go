package api_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// imageService is what both the in-process store and the API client offer;
// the conformance suite below runs against each.
type imageService interface {
	List(context.Context, image.ListOptions) ([]image.Summary, error)
	Inspect(context.Context, string) (image.Details, error)
	History(context.Context, string) ([]image.HistoryEntry, error)
	Tag(context.Context, string, string) error
	Remove(context.Context, string, image.RemoveOptions) ([]image.Deletion, error)
	Prune(context.Context, image.PruneOptions) (image.PruneReport, error)
	Pull(context.Context, string, image.PullOptions) (image.Image, error)
	Push(context.Context, string, image.PushOptions) (image.PushResult, error)
	Load(context.Context, io.Reader, image.LoadOptions) ([]image.LoadedImage, error)
	Import(context.Context, io.Reader, image.ImportOptions) (image.Image, error)
	Save(context.Context, io.Writer, []string, image.SaveOptions) error
	CheckLogin(context.Context, string, authn.AuthConfig) error
}

var (
	_ imageService = (*image.Store)(nil)
	_ imageService = (*api.ImageClient)(nil)
)

// serveImages serves a store on a unix socket and returns a client of it.
func serveImages(t *testing.T, store *image.Store, root string) *api.ImageClient {
	t.Helper()
	mux := http.NewServeMux()
	api.RegisterImageRoutes(mux, store)
	sock := filepath.Join(root, "api.sock")
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
	return c.Images()
}

func TestImageServiceConformance(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	reg := imagetest.StartRegistry(t, imagetest.AuthBasic)
	for _, kind := range []string{"in-process", "api-client"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			root := testutil.StateRoot(t)
			store, err := image.Open(root, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			var svc imageService = store
			if kind == "api-client" {
				svc = serveImages(t, store, root)
			}
			conformance(t, svc, reg.Host+"/"+kind+"/busybox:1")
		})
	}
}

// events records progress events.
type events struct {
	mu   sync.Mutex
	seen []image.Event
}

func (e *events) sink(ev image.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, ev)
}

func (e *events) has(status string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.seen, func(ev image.Event) bool { return strings.HasPrefix(ev.Status, status) })
}

func conformance(t *testing.T, svc imageService, ref string) {
	ctx := context.Background()
	layer, _ := imagetest.BusyboxLayer(t)
	auth := &authn.AuthConfig{Username: imagetest.User, Password: imagetest.Password}

	img, err := svc.Import(ctx, bytes.NewReader(layer), image.ImportOptions{Reference: ref, Message: "conformance"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Tag(ctx, ref, "other:2"); err != nil {
		t.Fatal(err)
	}
	list, err := svc.List(ctx, image.ListOptions{})
	if err != nil || len(list) != 1 || len(list[0].RepoTags) != 2 || list[0].ID != img.ID || list[0].Size <= 0 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	d, err := svc.Inspect(ctx, "other:2")
	if err != nil || d.ID != img.ID || d.Comment != "conformance" || !slices.Contains(d.RepoTags, "other:2") {
		t.Fatalf("inspect: %+v, %v", d, err)
	}
	if h, err := svc.History(ctx, img.ID); err != nil || len(h) != 1 || h[0].Size <= 0 {
		t.Fatalf("history: %+v, %v", h, err)
	}

	// Error classes are the same on both sides of the socket.
	if _, err := svc.Inspect(ctx, "missing:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("inspect missing: %v", err)
	}
	if _, err := svc.Remove(ctx, img.ID, image.RemoveOptions{}); !errdefs.IsConflict(err) {
		t.Fatalf("rm of an image with two names: %v", err)
	}
	if _, err := svc.Import(ctx, strings.NewReader("not a tarball at all"), image.ImportOptions{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("import of garbage: %v", err)
	}
	if err := svc.Save(ctx, io.Discard, []string{"missing:1"}, image.SaveOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("save of a missing image: %v", err)
	}
	if _, err := svc.Pull(ctx, "Bad Reference", image.PullOptions{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("pull of a bad reference: %v", err)
	}
	if err := svc.CheckLogin(ctx, strings.Split(ref, "/")[0], authn.AuthConfig{Username: imagetest.User, Password: "wrong"}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("login with a wrong password: %v", err)
	}

	// Save, remove, load: the same image back.
	for _, format := range []string{image.DockerArchive, image.OCIArchive} {
		var archive bytes.Buffer
		if err := svc.Save(ctx, &archive, []string{ref}, image.SaveOptions{Format: format}); err != nil {
			t.Fatalf("save %s: %v", format, err)
		}
		if _, err := svc.Remove(ctx, img.ID, image.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		ev := &events{}
		loaded, err := svc.Load(ctx, &archive, image.LoadOptions{Sink: ev.sink})
		if err != nil || len(loaded) != 1 || loaded[0].ID != img.ID || !ev.has("Loading layer") {
			t.Fatalf("load %s: %+v, %v, events %+v", format, loaded, err, ev.seen)
		}
	}

	// Push, remove, pull: the same image back, with progress.
	ev := &events{}
	res, err := svc.Push(ctx, ref, image.PushOptions{Auth: auth, Sink: ev.sink})
	if err != nil || !ev.has("Pushed") || res.Digest == "" {
		t.Fatalf("push: %+v, %v, events %+v", res, err, ev.seen)
	}
	if _, err := svc.Remove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	ev = &events{}
	pulled, err := svc.Pull(ctx, ref, image.PullOptions{Auth: auth, Sink: ev.sink})
	if err != nil || pulled.ID != img.ID || !ev.has("Pull complete") || !ev.has("Digest: "+res.Digest) {
		t.Fatalf("pull: %+v, %v, events %+v", pulled, err, ev.seen)
	}
	rep, err := svc.Prune(ctx, image.PruneOptions{All: true})
	if err != nil || len(rep.ImagesDeleted) != 2 || rep.SpaceReclaimed <= 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	if list, _ := svc.List(ctx, image.ListOptions{}); len(list) != 0 {
		t.Fatalf("after prune: %+v", list)
	}
}
