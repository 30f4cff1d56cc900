package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	imagetest.Cleanup()
	os.Exit(code)
}

func TestImportedBusyboxUnpacksByteForByte(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	layer, src := imagetest.BusyboxLayer(t)
	img, err := s.Import(context.Background(), bytes.NewReader(layer), ImportOptions{Reference: "busybox:test"})
	if err != nil {
		t.Fatal(err)
	}
	if img.RepoTags[0] != "docker.io/library/busybox:test" {
		t.Fatalf("RepoTags %v", img.RepoTags)
	}
	dirs, err := s.Snapshots(context.Background(), "busybox:test")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 1 {
		t.Fatalf("%d snapshot dirs, want 1", len(dirs))
	}
	imagetest.CompareTrees(t, src, dirs[0])
}

func TestWhiteoutsBecomeOverlayWhiteouts(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	layer := makeTar(t,
		dir("a/"),
		file("a/kept", "x"),
		file("a/.wh.gone", ""),
		file("a/.wh..wh..opq", ""),
		file(".wh.top", ""),
		dir("b/"),
		file("b/.wh..wh.plnk", ""),
		file("implicit/deep/.wh..wh..opq", ""),
	)
	out := t.TempDir()
	if _, err := unpackTar(context.Background(), bytes.NewReader(layer), out); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/gone", "top"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(out, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Fatalf("%s: mode %o rdev %d, want a 0/0 character device", p, st.Mode, st.Rdev)
		}
	}
	for _, p := range []string{"a", "implicit/deep"} {
		val := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(out, p), overlayOpaqueXattr, val)
		if err != nil || string(val[:n]) != "y" {
			t.Fatalf("%s: opaque xattr %q, %v", p, val[:max(n, 0)], err)
		}
	}
	if _, err := os.Lstat(filepath.Join(out, "b/.wh..wh.plnk")); !os.IsNotExist(err) {
		t.Fatalf("AUFS metadata file was unpacked: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(out, "a/.wh.gone")); !os.IsNotExist(err) {
		t.Fatalf("whiteout file itself was unpacked: %v", err)
	}
}

func TestLaterEntryReplacesEarlierOneWithoutWritingThroughHardLink(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	layer := makeTar(t, file("a", "first"), hardlink("b", "a"), file("b", "second"))
	out := t.TempDir()
	if _, err := unpackTar(context.Background(), bytes.NewReader(layer), out); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, "a"))
	b, _ := os.ReadFile(filepath.Join(out, "b"))
	if string(a) != "first" || string(b) != "second" {
		t.Fatalf("a=%q b=%q", a, b)
	}
}

// TestHostileLayersAreRefused guards against layers that try to write
// outside their snapshot: by name, through symlinks and hard links they
// make, or by claiming absurd sizes. Each must fail with a clear error and
// leave both the store and the rest of the file system as they were.
func TestHostileLayersAreRefused(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, Options{})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 40) + strings.TrimPrefix(outside, "/")
	cases := []struct {
		name  string
		layer []byte
		class func(error) bool
		text  string
	}{
		{"dot-dot name", makeTar(t, file("../escape", "x")), errdefs.IsInvalidArgument, "leaves the layer"},
		{"dot-dot deep in name", makeTar(t, file("a/../../"+up+"/escape", "x")), errdefs.IsInvalidArgument, "leaves the layer"},
		{"absolute name", makeTar(t, file(outside+"/escape", "x")), errdefs.IsInvalidArgument, "absolute path"},
		{"symlink out, relative", makeTar(t, symlink("evil", up)), errdefs.IsInvalidArgument, "points outside"},
		{"write through absolute symlink", makeTar(t, symlink("d", outside), file("d/pwned", "x")), errdefs.IsInvalidArgument, "symlink"},
		{"write through symlink replacing a dir", makeTar(t, dir("a/"), symlink("a", outside), file("a/pwned", "x")), errdefs.IsInvalidArgument, "symlink"},
		{"whiteout through symlink", makeTar(t, symlink("d", outside), file("d/.wh.sentinel", "")), errdefs.IsInvalidArgument, "symlink"},
		{"opaque through symlink", makeTar(t, symlink("d", outside), file("d/.wh..wh..opq", "")), errdefs.IsInvalidArgument, "symlink"},
		{"hard link out, relative", makeTar(t, hardlink("h", up+"/sentinel")), errdefs.IsInvalidArgument, "leaves the layer"},
		{"hard link to a host path", makeTar(t, hardlink("h", outside+"/sentinel")), errdefs.IsInvalidArgument, "not a file earlier in the layer"},
		{"hard link through symlink", makeTar(t, symlink("d", outside), hardlink("h", "d/sentinel")), errdefs.IsInvalidArgument, "symlink"},
		{"whiteout of dot-dot", makeTar(t, file("a/.wh...", "")), errdefs.IsInvalidArgument, "bad whiteout"},
		{"absurd size", absurdSize(t), errdefs.IsResourceExhausted, "claims"},
		{"truncated", makeTar(t, file("a", strings.Repeat("x", 10000)))[:3000], errdefs.IsInvalidArgument, "truncated"},
		{"not a tar", []byte(strings.Repeat("garbage!", 200)), errdefs.IsInvalidArgument, "corrupt"},
	}
	before := imagetest.ListTree(t, s.Dir())
	outsideBefore := imagetest.ListTree(t, outside)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Import(context.Background(), bytes.NewReader(c.layer), ImportOptions{Reference: "hostile:latest"})
			if err == nil {
				t.Fatal("layer accepted")
			}
			if !c.class(err) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q (class wrong or no %q)", err, c.text)
			}
			if after := imagetest.ListTree(t, s.Dir()); !slices.Equal(before, after) {
				t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
			}
			if after := imagetest.ListTree(t, outside); !slices.Equal(outsideBefore, after) {
				t.Fatalf("outside changed:\nbefore %v\nafter  %v", outsideBefore, after)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "sentinel")); string(b) != "untouched" {
				t.Fatalf("sentinel now %q", b)
			}
		})
	}
}

// absurdSize is a tar whose one entry claims a petabyte.
func absurdSize(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 50, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bytes.Repeat([]byte("x"), 4096))
	tw.Flush()
	return buf.Bytes()
}

func TestCleanEntryName(t *testing.T) {
	t.Parallel()
	good := map[string]string{"a": "a", "./a/b/": "a/b", "a/../b": "b", "./": ".", "a//b": "a/b"}
	for in, want := range good {
		if got, err := cleanEntryName(in); err != nil || got != want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/a", "..", "../a", "a/../../b", "a\x00b"} {
		if got, err := cleanEntryName(in); err == nil {
			t.Errorf("cleanEntryName(%q) = %q, want an error", in, got)
		}
	}
	escapes := map[[2]string]bool{
		{"a", "../b"}: true, {"a/b", "../c"}: false, {"a", "/etc/passwd"}: false,
		{"a/b", "../../c"}: true, {"a", "b/../../c"}: true, {"lib/x", "../../usr/lib/x"}: true,
	}
	for in, want := range escapes {
		if got := symlinkEscapes(in[0], in[1]); got != want {
			t.Errorf("symlinkEscapes(%q, %q) = %v, want %v", in[0], in[1], got, want)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(makeTar(f, dir("a/"), file("a/b", "x"), symlink("c", "a/b"), hardlink("d", "a/b"), file("a/.wh.e", "")))
	f.Add(makeTar(f, symlink("d", "/"), file("d/x", "y")))
	testutil.RequireRoot(f) // owners and device nodes need root
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, layer []byte) {
		parent, err := os.MkdirTemp(base, "fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		out := filepath.Join(parent, "fs")
		os.Mkdir(out, 0o755)
		_, _ = unpackTar(context.Background(), bytes.NewReader(layer), out)
		// Whatever the layer, nothing may appear beside the target directory.
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("unpack wrote outside its directory: %v", entries)
		}
	})
}
