package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

func save(t *testing.T, s *Store, format string, refs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Save(context.Background(), &buf, refs, SaveOptions{Format: format}); err != nil {
		t.Fatalf("save %v as %s: %v", refs, format, err)
	}
	return buf.Bytes()
}

func TestSaveThenLoadKeepsImageIDAndTree(t *testing.T) {
	t.Parallel()
	layer, src := imagetest.BusyboxLayer(t)
	from, _ := newStore(t, Options{})
	img := importAs(t, from, layer, "busybox:saved")
	untagged := importAs(t, from, smallLayer(t, "x"), "")
	for _, format := range []string{DockerArchive, OCIArchive} {
		t.Run(format, func(t *testing.T) {
			archive := save(t, from, format, "busybox:saved", untagged.ID)
			to, _ := newStore(t, Options{})
			loaded, err := to.Load(context.Background(), bytes.NewReader(archive), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := []LoadedImage{{Reference: "docker.io/library/busybox:saved", ID: img.ID}, {ID: untagged.ID}}
			if !slices.Equal(loaded, want) {
				t.Fatalf("loaded %+v, want %+v", loaded, want)
			}
			dirs, err := to.Snapshots(context.Background(), "busybox:saved")
			if err != nil {
				t.Fatal(err)
			}
			imagetest.CompareTrees(t, src, dirs[0])
			// Loading again changes nothing.
			if again, err := to.Load(context.Background(), bytes.NewReader(archive), LoadOptions{}); err != nil || !slices.Equal(again, want) {
				t.Fatalf("second load: %+v, %v", again, err)
			}
		})
	}
	// A docker-archive is readable through manifest.json alone, as older
	// docker and skopeo read it.
	archive := save(t, from, DockerArchive, "busybox:saved")
	legacy := rewriteTar(t, archive, func(h *tar.Header, body []byte) ([]byte, bool) {
		return body, h.Name != "index.json"
	})
	to, _ := newStore(t, Options{})
	loaded, err := to.Load(context.Background(), bytes.NewReader(legacy), LoadOptions{})
	if err != nil || len(loaded) != 1 || loaded[0].ID != img.ID {
		t.Fatalf("load through manifest.json: %+v, %v", loaded, err)
	}
}

// rewriteTar copies a tarball through edit, which may change an entry's
// body or drop the entry.
func rewriteTar(t *testing.T, in []byte, edit func(h *tar.Header, body []byte) ([]byte, bool)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(in))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body, keep := edit(h, body)
		if !keep {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return out.Bytes()
}

// TestBadArchivesLeaveStoreAsItWas guards load's all-or-nothing promise.
func TestBadArchivesLeaveStoreAsItWas(t *testing.T) {
	t.Parallel()
	layer, _ := imagetest.BusyboxLayer(t)
	from, _ := newStore(t, Options{})
	img := importAs(t, from, layer, "busybox:bad")
	good := save(t, from, DockerArchive, "busybox:bad")
	goodOCI := save(t, from, OCIArchive, "busybox:bad")
	layerName := "blobs/sha256/" + strings.TrimPrefix(img.Layers[0].DiffID, "sha256:")
	ociLayerName := "blobs/sha256/" + strings.TrimPrefix(img.Layers[0].Digest, "sha256:")
	flip := func(name string) func(h *tar.Header, body []byte) ([]byte, bool) {
		return func(h *tar.Header, body []byte) ([]byte, bool) {
			if h.Name == name {
				body = slices.Clone(body)
				body[len(body)/2] ^= 0xff
			}
			return body, true
		}
	}
	drop := func(name string) func(h *tar.Header, body []byte) ([]byte, bool) {
		return func(h *tar.Header, body []byte) ([]byte, bool) { return body, h.Name != name }
	}
	legacy := rewriteTar(t, good, drop("index.json"))
	cases := []struct {
		name    string
		archive []byte
		class   func(error) bool
		text    string
	}{
		{"truncated", good[:len(good)/2], errdefs.IsInvalidArgument, "truncated"},
		{"empty", nil, errdefs.IsInvalidArgument, "not a tarball"},
		{"garbage", bytes.Repeat([]byte("not a tar"), 300), errdefs.IsInvalidArgument, "not a valid tarball"},
		{"layer corrupt (docker)", rewriteTar(t, legacy, flip(layerName)), errdefs.IsDataLoss, "does not match its diff ID"},
		{"layer corrupt (oci)", rewriteTar(t, goodOCI, flip(ociLayerName)), errdefs.IsDataLoss, "does not match its digest"},
		{"layer missing (docker)", rewriteTar(t, legacy, drop(layerName)), errdefs.IsInvalidArgument, "missing"},
		{"layer missing (oci)", rewriteTar(t, goodOCI, drop(ociLayerName)), errdefs.IsInvalidArgument, "missing"},
		{"no manifest", rewriteTar(t, legacy, drop("manifest.json")), errdefs.IsInvalidArgument, "neither manifest.json"},
		{"bad name", rewriteTar(t, legacy, func(h *tar.Header, body []byte) ([]byte, bool) {
			if h.Name == "manifest.json" {
				body = bytes.ReplaceAll(body, []byte("busybox:bad"), []byte("Not A Name"))
			}
			return body, true
		}), errdefs.IsInvalidArgument, "invalid reference format"},
		{"escaping link", rewriteTar(t, legacy, func(h *tar.Header, body []byte) ([]byte, bool) {
			if h.Name == layerName {
				h.Typeflag, h.Linkname = tar.TypeSymlink, "../../../../etc/passwd"
				return nil, true
			}
			return body, true
		}), errdefs.IsInvalidArgument, "leaves the layer"},
	}
	to, _ := newStore(t, Options{})
	importAs(t, to, smallLayer(t, "existing"), "existing:1")
	before := imagetest.ListTree(t, to.Dir())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := to.Load(context.Background(), bytes.NewReader(c.archive), LoadOptions{})
			if err == nil {
				t.Fatal("archive accepted")
			}
			if !c.class(err) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q: wrong class or no %q", err, c.text)
			}
			if after := imagetest.ListTree(t, to.Dir()); !slices.Equal(before, after) {
				t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestSkopeoInterop shows that skopeo accepts what berth saves and that
// berth loads what skopeo writes, in both archive formats.
func TestSkopeoInterop(t *testing.T) {
	t.Parallel()
	skopeo := testutil.RequireCommand(t, "skopeo")[0]
	layer, src := imagetest.BusyboxLayer(t)
	s, _ := newStore(t, Options{})
	img := importAs(t, s, layer, "busybox:skopeo")
	work := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy", "--tmpdir", work}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	configDigest := func(transport string) string {
		t.Helper()
		out := run("inspect", "--config", "--raw", transport)
		return digestOf([]byte(out)).String()
	}
	docker := filepath.Join(work, "berth-docker.tar")
	oci := filepath.Join(work, "berth-oci.tar")
	os.WriteFile(docker, save(t, s, DockerArchive, "busybox:skopeo"), 0o600)
	os.WriteFile(oci, save(t, s, OCIArchive, "busybox:skopeo"), 0o600)

	// skopeo reads berth's archives, and finds the same image (config) in them.
	if got := configDigest("docker-archive:" + docker); got != img.ID {
		t.Fatalf("skopeo sees config %s in berth's docker-archive, want %s", got, img.ID)
	}
	if got := configDigest("oci-archive:" + oci); got != img.ID {
		t.Fatalf("skopeo sees config %s in berth's oci-archive, want %s", got, img.ID)
	}
	dirCopy := filepath.Join(work, "dir")
	run("copy", "docker-archive:"+docker, "dir:"+dirCopy)
	ociDir := filepath.Join(work, "oci")
	run("copy", "oci-archive:"+oci, "oci:"+ociDir+":busybox:skopeo")

	// berth loads what skopeo writes.
	fromSkopeo := map[string]string{
		"docker-archive": filepath.Join(work, "skopeo-docker.tar"),
		"oci-archive":    filepath.Join(work, "skopeo-oci.tar"),
	}
	run("copy", "dir:"+dirCopy, "docker-archive:"+fromSkopeo["docker-archive"]+":localhost/from-skopeo:docker")
	run("copy", "oci:"+ociDir+":busybox:skopeo", "oci-archive:"+fromSkopeo["oci-archive"]+":localhost/from-skopeo:oci")
	for kind, tag := range map[string]string{"docker-archive": "docker", "oci-archive": "oci"} {
		to, _ := newStore(t, Options{})
		f, err := os.Open(fromSkopeo[kind])
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := to.Load(context.Background(), f, LoadOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("load skopeo's %s: %v", kind, err)
		}
		want := LoadedImage{Reference: "localhost/from-skopeo:" + tag, ID: img.ID}
		if len(loaded) != 1 || loaded[0] != want {
			t.Fatalf("load skopeo's %s: %+v, want %+v", kind, loaded, want)
		}
		dirs, err := to.Snapshots(context.Background(), want.Reference)
		if err != nil {
			t.Fatal(err)
		}
		imagetest.CompareTrees(t, src, dirs[0])
	}
}

// TestFullDiskLeavesStoreAsItWas fills a small tmpfs holding the state
// root: the import or load that runs out of space fails with a
// resource-exhausted error and the store is as it was before.
func TestFullDiskLeavesStoreAsItWas(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=8m,mode=0711"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	importAs(t, s, smallLayer(t, "fits"), "fits:1")
	big := makeTar(t, file("big", randomString(t, 5<<20)), file("big2", randomString(t, 5<<20)))
	before := imagetest.ListTree(t, s.Dir())

	_, err = s.Import(context.Background(), bytes.NewReader(big), ImportOptions{Reference: "big:1"})
	if !errdefs.IsResourceExhausted(err) {
		t.Fatalf("import onto a full disk: want resource exhausted, got %v", err)
	}
	if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
		t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
	}

	// A layer that compresses well: its blob fits, unpacking it does not.
	zeros := strings.Repeat("\x00", 3<<20)
	compressible := makeTar(t, file("z1", zeros), file("z2", zeros), file("z3", zeros))
	_, err = s.Import(context.Background(), bytes.NewReader(compressible), ImportOptions{Reference: "zeros:1"})
	if !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "unpack") {
		t.Fatalf("import of a layer too big to unpack: want resource exhausted while unpacking, got %v", err)
	}
	if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
		t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
	}

	// A load that fills the disk while staging.
	other, _ := newStore(t, Options{})
	importAs(t, other, big, "big:1")
	archive := save(t, other, OCIArchive, "big:1")
	_, err = s.Load(context.Background(), bytes.NewReader(archive), LoadOptions{})
	if !errdefs.IsResourceExhausted(err) {
		t.Fatalf("load onto a full disk: want resource exhausted, got %v", err)
	}
	if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
		t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := s.Resolve(context.Background(), "fits:1"); err != nil {
		t.Fatalf("the image that was there: %v", err)
	}
}

// randomString is n bytes that do not compress.
func randomString(t testing.TB, n int) string {
	b := make([]byte, n)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}
