package image

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	comp "github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func repoBase(ref string) string {
	r, _ := ParseReference(ref)
	return path.Base(r.Repository)
}

var goodAuth = &authn.AuthConfig{Username: imagetest.User, Password: imagetest.Password}

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) sink(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) has(id, status string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if (id == "" || e.ID == id) && strings.HasPrefix(e.Status, status) {
			return true
		}
	}
	return false
}

// pushBusybox makes an image from busybox-static plus one small layer
// (data/NAME, NAME the ref's repository's last part) in a store of its own
// and pushes it as ref.
func pushBusybox(t *testing.T, ref string, auth *authn.AuthConfig) Image {
	t.Helper()
	layer, _ := imagetest.BusyboxLayer(t)
	s, _ := newStore(t, Options{})
	img, err := s.Create(context.Background(), CreateOptions{
		Layers:  []NewLayer{{Tar: bytes.NewReader(layer)}, {Tar: bytes.NewReader(smallLayer(t, repoBase(ref)))}},
		Config:  v1.Config{Cmd: []string{"/bin/sh"}},
		History: []v1.History{{CreatedBy: "ADD busybox /"}, {CreatedBy: "COPY " + repoBase(ref) + " /data/"}},
		Tags:    []string{ref},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res, err := s.Push(context.Background(), ref, PushOptions{Auth: auth, Sink: rec.sink})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	if res.Digest != img.Manifest.Digest.String() || !rec.has("", "The push refers to repository") || !rec.has(shortID(img.Layers[0].Digest), "Pushed") {
		t.Fatalf("push result %+v, events %+v", res, rec.events)
	}
	return img
}

func TestPushThenPullIntoEmptyStoreGivesTheSameTree(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthBasic)
	ref := reg.Host + "/berth/busybox:1"
	pushed := pushBusybox(t, ref, goodAuth)
	_, src := imagetest.BusyboxLayer(t)

	s, _ := newStore(t, Options{})
	ctx := context.Background()
	if _, err := s.Pull(ctx, ref, PullOptions{Auth: &authn.AuthConfig{}}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("pull without credentials: want unauthenticated, got %v", err)
	}
	rec := &recorder{}
	img, err := s.Pull(ctx, ref, PullOptions{Auth: goodAuth, Sink: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != pushed.ID || !slices.Equal(img.RepoTags, []string{ref}) || len(img.RepoDigests) != 1 {
		t.Fatalf("pulled %+v, want ID %s", img, pushed.ID)
	}
	for _, l := range img.Layers {
		id := shortID(l.Digest)
		if !rec.has(id, "Pulling fs layer") || !rec.has(id, "Download complete") || !rec.has(id, "Pull complete") {
			t.Fatalf("layer %s: events %+v", id, rec.events)
		}
	}
	if !rec.has("", "Status: Downloaded newer image for "+ref) {
		t.Fatalf("events %+v", rec.events)
	}
	dirs, err := s.Snapshots(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	imagetest.CompareTrees(t, src, dirs[1])
	if b, _ := os.ReadFile(dirs[0] + "/data/busybox"); string(b) != "content of busybox\n" {
		t.Fatalf("top layer: %q", b)
	}

	// Pulling again fetches nothing.
	before := reg.BlobGets(img.Layers[0].Digest)
	rec = &recorder{}
	if _, err := s.Pull(ctx, ref, PullOptions{Auth: goodAuth, Sink: rec.sink}); err != nil {
		t.Fatal(err)
	}
	if reg.BlobGets(img.Layers[0].Digest) != before || !rec.has(shortID(img.Layers[0].Digest), "Already exists") || !rec.has("", "Status: Image is up to date") {
		t.Fatalf("second pull fetched again or said so: %+v", rec.events)
	}

	// Pull by digest: untagged, with the repo digest.
	other, _ := newStore(t, Options{})
	byDigest := reg.Host + "/berth/busybox@" + pushed.Manifest.Digest.String()
	img2, err := other.Pull(ctx, byDigest, PullOptions{Auth: goodAuth})
	if err != nil {
		t.Fatal(err)
	}
	if len(img2.RepoTags) != 0 || !slices.Equal(img2.RepoDigests, []string{byDigest}) {
		t.Fatalf("pull by digest: %+v", img2)
	}
}

func TestTokenAuthPushPullAndLogin(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthToken)
	ref := reg.Host + "/tok/busybox:1"
	s, _ := newStore(t, Options{})
	ctx := context.Background()
	if err := s.CheckLogin(ctx, reg.Host, *goodAuth); err != nil {
		t.Fatalf("login with good credentials: %v", err)
	}
	if err := s.CheckLogin(ctx, "http://"+reg.Host+"/v2/", authn.AuthConfig{Username: imagetest.User, Password: "wrong"}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("login with a wrong password: want unauthenticated, got %v", err)
	}
	pushed := pushBusybox(t, ref, goodAuth)
	if _, err := s.Pull(ctx, ref, PullOptions{Auth: &authn.AuthConfig{Username: imagetest.User, Password: "wrong"}}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("pull with a wrong password: want unauthenticated, got %v", err)
	}
	img, err := s.Pull(ctx, ref, PullOptions{Auth: goodAuth})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != pushed.ID {
		t.Fatalf("pulled %s, pushed %s", img.ID, pushed.ID)
	}
}

func TestBasicAuthLogin(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthBasic)
	s, _ := newStore(t, Options{})
	if err := s.CheckLogin(context.Background(), reg.Host, *goodAuth); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := s.CheckLogin(context.Background(), reg.Host, authn.AuthConfig{Username: imagetest.User, Password: "nope"}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("login with a wrong password: want unauthenticated, got %v", err)
	}
}

// TestConcurrentPullsFetchEachLayerOnce holds every blob download until
// all the pulls have asked for the manifest, so they all want the layers
// at the same time; the registry must still see one GET per layer.
func TestConcurrentPullsFetchEachLayerOnce(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	ref := reg.Host + "/conc/busybox:1"
	pushed := pushBusybox(t, ref, nil)
	const pulls = 4
	reg.HoldBlobsUntilManifests(pulls)

	s, _ := newStore(t, Options{})
	var wg sync.WaitGroup
	ids := make([]string, pulls)
	errs := make([]error, pulls)
	for i := range pulls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.Pull(context.Background(), ref, PullOptions{})
			ids[i], errs[i] = img.ID, err
		}()
	}
	wg.Wait()
	for i := range pulls {
		if errs[i] != nil || ids[i] != pushed.ID {
			t.Fatalf("pull %d: %s, %v", i, ids[i], errs[i])
		}
	}
	for _, l := range pushed.Layers {
		if n := reg.BlobGets(l.Digest); n != 1 {
			t.Errorf("layer %s fetched %d times, want once", shortID(l.Digest), n)
		}
	}
	if _, sn := storeContent(t, s); sn != len(pushed.Layers) {
		t.Fatalf("%d snapshots for %d layers", sn, len(pushed.Layers))
	}
}

// TestRegistryFaultsLeaveStoreAsItWas: a layer whose content does not match
// its digest, a layer missing from the registry, an unknown tag and an
// unparsable reference each fail with a clear error and change nothing.
func TestRegistryFaultsLeaveStoreAsItWas(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	good := reg.Host + "/faults/good:1"
	pushed := pushBusybox(t, good, nil)
	corruptRef := reg.Host + "/faults/corrupt:1"
	corrupt := pushBusybox(t, corruptRef, nil)
	missingRef := reg.Host + "/faults/missing:1"
	missing := pushBusybox(t, missingRef, nil)

	// Same size, different bytes: only the digest can tell.
	dataPath := reg.BlobData(corrupt.Layers[1].Digest)
	b, err := os.ReadFile(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(dataPath, b, 0o644)
	if err := os.Remove(reg.BlobData(missing.Layers[1].Digest)); err != nil {
		t.Fatal(err)
	}

	s, _ := newStore(t, Options{})
	before := imagetest.ListTree(t, s.Dir())
	cases := []struct {
		ref   string
		class func(error) bool
		text  string
	}{
		{corruptRef, errdefs.IsDataLoss, "digest mismatch"},
		{missingRef, errdefs.IsNotFound, "layer " + shortID(missing.Layers[1].Digest)},
		{reg.Host + "/faults/good:nope", errdefs.IsNotFound, "MANIFEST_UNKNOWN"},
		{reg.Host + "/Faults/BAD ref", errdefs.IsInvalidArgument, "invalid reference format"},
	}
	for _, c := range cases {
		_, err := s.Pull(context.Background(), c.ref, PullOptions{})
		if err == nil || !c.class(err) || !strings.Contains(err.Error(), c.text) {
			t.Fatalf("pull %s: error %v, want its class and %q", c.ref, err, c.text)
		}
		if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
			t.Fatalf("pull %s changed the store:\nbefore %v\nafter  %v", c.ref, before, after)
		}
	}
	if _, err := s.Pull(context.Background(), good, PullOptions{}); err != nil {
		t.Fatalf("the good image after the faults: %v", err)
	}
	if img, _ := s.Resolve(context.Background(), good); img.ID != pushed.ID {
		t.Fatalf("good image %s, want %s", img.ID, pushed.ID)
	}
}

func TestPlainHTTPOnlyForLoopbackAndInsecureRegistries(t *testing.T) {
	t.Parallel()
	insecure := []string{"registry.lan:5000", "10.1.0.0/16", "http://plain.example/"}
	cases := map[string]bool{
		"127.0.0.1:5000": true, "127.8.9.10": true, "localhost:5000": true, "[::1]:5000": true,
		"registry.lan:5000": true, "registry.lan:5001": false, "10.1.2.3:5000": true, "10.2.0.1": false,
		"plain.example": true, "docker.io": false, "192.168.1.10:5000": false,
	}
	for host, want := range cases {
		if got := AllowsPlainHTTP(host, insecure); got != want {
			t.Errorf("AllowsPlainHTTP(%q) = %v, want %v", host, got, want)
		}
	}
	p := &httpPolicy{insecure: nil}
	req, _ := httpRequest("http://10.9.9.9:5000/v2/")
	if _, err := p.RoundTrip(req); !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("plain HTTP to a non-loopback registry: %v", err)
	}
}

func TestServerHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"":                           {"index.docker.io", DockerHubServer},
		"docker.io":                  {"index.docker.io", DockerHubServer},
		DockerHubServer:              {"index.docker.io", DockerHubServer},
		"localhost:5000":             {"localhost:5000", "localhost:5000"},
		"https://ghcr.io/v2/":        {"ghcr.io", "ghcr.io"},
		"http://127.0.0.1:5000/path": {"127.0.0.1:5000", "127.0.0.1:5000"},
	} {
		if h, k := ServerHost(in); h != want[0] || k != want[1] {
			t.Errorf("ServerHost(%q) = %q, %q; want %q", in, h, k, want)
		}
	}
}

func httpRequest(u string) (*http.Request, error) { return http.NewRequest(http.MethodGet, u, nil) }

// TestHostileLayerFromARegistryIsRefused guards the pull path, which
// unpacks layers straight from the download: a layer that writes through a
// symlink is refused there too, and nothing is left behind.
func TestHostileLayerFromARegistryIsRefused(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	outside := t.TempDir()
	hostile := makeTar(t, symlink("d", outside), file("d/pwned", "x"))
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(hostile)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/evil/image:1"
	nref, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, Options{})
	before := imagetest.ListTree(t, s.Dir())
	_, err = s.Pull(context.Background(), ref, PullOptions{})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("pull of a hostile layer: %v", err)
	}
	if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
		t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("the layer wrote outside: %v", entries)
	}
}

// TestPullUnpacksZstdGzipAndPlainLayers pulls an image whose layers come
// in each compression a registry may serve.
func TestPullUnpacksZstdGzipAndPlainLayers(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	var layers []v1.Layer
	for _, c := range []comp.Compression{comp.ZStd, comp.GZip, comp.None} {
		content := makeTar(t, file(string(c)+".txt", "compressed with "+string(c)+"\n"))
		var l v1.Layer
		var err error
		if c == comp.None {
			l, err = partial.UncompressedToLayer(&plainLayer{tar: content})
		} else {
			l, err = tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }, tarball.WithCompression(c))
		}
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/compressions/image:1"
	nref, _ := name.ParseReference(ref)
	if err := remote.Write(nref, img); err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, Options{})
	got, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.Snapshots(context.Background(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"none", "gzip", "zstd"} {
		if b, err := os.ReadFile(filepath.Join(dirs[i], c+".txt")); err != nil || string(b) != "compressed with "+c+"\n" {
			t.Errorf("layer %s: %q, %v (media type %s)", c, b, err, got.Layers[2-i].MediaType)
		}
	}
}

// plainLayer is an uncompressed layer for the registry client.
type plainLayer struct{ tar []byte }

func (p *plainLayer) DiffID() (v1.Hash, error) { return digestOf(p.tar), nil }
func (p *plainLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(p.tar)), nil
}
func (p *plainLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }

// TestPullPicksThePlatformFromAnIndex pulls a multi-platform image: the
// host's platform by default, another on request; the repo digest is the
// index's, as docker records it.
func TestPullPicksThePlatformFromAnIndex(t *testing.T) {
	t.Parallel()
	reg := imagetest.StartRegistry(t, imagetest.AuthNone)
	host := hostPlatform()
	other := v1.Platform{OS: "linux", Architecture: "riscv64"}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []v1.Platform{other, host} {
		content := makeTar(t, file("arch", p.Architecture))
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil })
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{digestOf(content)}}})
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	ref := reg.Host + "/multi/arch:1"
	nref, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(nref, idx); err != nil {
		t.Fatal(err)
	}
	indexDigest, _ := idx.Digest()
	s, _ := newStore(t, Options{})
	for _, c := range []struct {
		platform *v1.Platform
		want     string
	}{{nil, host.Architecture}, {&other, other.Architecture}} {
		img, err := s.Pull(context.Background(), ref, PullOptions{Platform: c.platform})
		if err != nil {
			t.Fatal(err)
		}
		if img.Config.Architecture != c.want || !slices.Contains(img.RepoDigests, reg.Host+"/multi/arch@"+indexDigest.String()) {
			t.Fatalf("pulled %s with repo digests %v, want %s and the index digest", img.Config.Architecture, img.RepoDigests, c.want)
		}
		dirs, _ := s.Snapshots(context.Background(), img.ID)
		if b, _ := os.ReadFile(filepath.Join(dirs[0], "arch")); string(b) != c.want {
			t.Fatalf("snapshot holds %q, want %q", b, c.want)
		}
	}
}
