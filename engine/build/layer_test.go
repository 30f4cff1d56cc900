package build

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// makeUpper lays out an overlay upper dir as the kernel leaves one: new
// and changed files, a whiteout, an opaque directory, a hard link, a
// symlink, set-id bits, owners and xattrs (overlayfs' own among them).
func makeUpper(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(unix.Mknod(filepath.Join(dir, "etc", "motd"), unix.S_IFCHR, 0)) // deleted
	must(os.MkdirAll(filepath.Join(dir, "var", "cache"), 0o700))
	must(unix.Setxattr(filepath.Join(dir, "var", "cache"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(dir, "var", "cache", "new"), []byte("fresh"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "bin-tool"), []byte("#!/bin/sh\n"), 0o755))
	must(unix.Chmod(filepath.Join(dir, "bin-tool"), 0o4755))
	must(os.Link(filepath.Join(dir, "bin-tool"), filepath.Join(dir, "bin-tool2")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "link")))
	must(os.WriteFile(filepath.Join(dir, "owned"), []byte("x"), 0o640))
	must(os.Chown(filepath.Join(dir, "owned"), 1000, 1001))
	must(unix.Setxattr(filepath.Join(dir, "owned"), "user.note", []byte("kept"), 0))
	must(unix.Setxattr(filepath.Join(dir, "owned"), "trusted.overlay.origin", []byte("dropped"), 0))
	return dir
}

func layerOf(t *testing.T, upper string, clamp *time.Time) []byte {
	t.Helper()
	entries, err := scanUpper(upper)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeLayer(&buf, upper, entries, clamp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayerTarHasWhiteoutsOwnersAndClampedTimes(t *testing.T) {
	upper := makeUpper(t)
	epoch := time.Unix(1700000000, 0).UTC()
	data := layerOf(t, upper, &epoch)
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	headers := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		headers[h.Name] = h
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want the epoch %v", h.Name, h.ModTime, epoch)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: atime/ctime/names in the header: %+v", h.Name, h)
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay") {
				t.Errorf("%s: overlayfs' xattr %s leaked into the layer", h.Name, k)
			}
		}
	}
	want := []string{
		"bin-tool", "bin-tool2", "etc/", "etc/.wh.motd", "etc/passwd", "link", "owned",
		"var/", "var/cache/", "var/cache/.wh..wh..opq", "var/cache/new",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("entries\n %v\nwant\n %v", names, want)
	}
	if h := headers["bin-tool"]; h.Mode != 0o4755 || h.Typeflag != tar.TypeReg {
		t.Errorf("bin-tool: mode %o type %c", h.Mode, h.Typeflag)
	}
	if h := headers["bin-tool2"]; h.Typeflag != tar.TypeLink || h.Linkname != "bin-tool" {
		t.Errorf("hard link: %+v", h)
	}
	if h := headers["link"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/passwd" {
		t.Errorf("symlink: %+v", h)
	}
	if h := headers["owned"]; h.Uid != 1000 || h.Gid != 1001 || h.Mode != 0o640 || h.PAXRecords["SCHILY.xattr.user.note"] != "kept" {
		t.Errorf("owned: %+v", h)
	}
}

func TestLayerTarIsTheSameBytesForTheSameContent(t *testing.T) {
	upper := makeUpper(t)
	epoch := time.Unix(0, 0).UTC()
	first := layerOf(t, upper, &epoch)
	// Touch everything: new mtimes and atimes, the same content.
	later := time.Now().Add(time.Hour)
	filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, later, later)
		}
		return nil
	})
	if second := layerOf(t, upper, &epoch); !bytes.Equal(first, second) {
		t.Fatal("the same changes made a different layer after their times changed")
	}
	// Without a clamp (commit), mtimes are kept.
	kept := layerOf(t, upper, nil)
	tr := tar.NewReader(bytes.NewReader(kept))
	h, err := tr.Next()
	if err != nil || h.ModTime.Unix() != later.Unix() {
		t.Errorf("unclamped mtime %v, want %v (%v)", h.ModTime, later, err)
	}
}

func TestMountStubsAreNotChanges(t *testing.T) {
	testutil.RequireRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	writeFiles := func(root string, files map[string]string) {
		for p, c := range files {
			full := filepath.Join(root, p)
			if strings.HasSuffix(p, "/") {
				os.MkdirAll(full, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(full), 0o755)
			os.WriteFile(full, []byte(c), 0o644)
		}
	}
	writeFiles(lower, map[string]string{"etc/passwd": "root", "etc/hosts": "127.0.0.1 localhost\n", "bin/sh": "x"})
	// What a container's setup leaves in the upper dir: empty mount
	// targets, and /etc copied up to hold one; plus the step's own work.
	writeFiles(upper, map[string]string{
		"etc/resolv.conf": "", "proc/": "", "run/secrets/": "",
		"etc/hosts": "", // exists below: an empty file here is a real change
		"app/out":   "built",
		"dev/":      "", "dev/keep": "made by the step",
	})
	stubs := []string{"/etc/resolv.conf", "/etc/hosts", "/proc", "/run/secrets", "/dev", "/sys"}
	entries, err := scanUpper(upper)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range withoutStubs(entries, []string{lower}, stubs) {
		got = append(got, e.rel)
	}
	want := "app app/out dev dev/keep etc etc/hosts"
	if strings.Join(got, " ") != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
}

func TestChangesAddedChangedDeleted(t *testing.T) {
	testutil.RequireRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(lower, "etc"), 0o755)
	os.WriteFile(filepath.Join(lower, "etc", "passwd"), []byte("root"), 0o644)
	os.WriteFile(filepath.Join(lower, "etc", "motd"), []byte("hi"), 0o644)
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc", "passwd"), []byte("root\nuser"), 0o644)
	unix.Mknod(filepath.Join(upper, "etc", "motd"), unix.S_IFCHR, 0)
	os.WriteFile(filepath.Join(upper, "new"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(upper, "proc"), 0o755)
	changes, err := Changes(Layer{Upper: upper, Lower: []string{lower}, Mountpoints: []string{"/proc"}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.Kind.String()+" "+c.Path)
	}
	want := "C /etc,D /etc/motd,C /etc/passwd,A /new"
	if strings.Join(lines, ",") != want {
		t.Fatalf("changes %v, want %s", lines, want)
	}
	none, err := Changes(Layer{Upper: filepath.Join(upper, "missing"), Lower: []string{lower}})
	if err != nil || len(none) != 0 {
		t.Fatalf("a never-started container: %v %v", none, err)
	}
}

func TestLowerLookupHonoursWhiteoutsAndOpaqueDirs(t *testing.T) {
	testutil.RequireRoot(t)
	top, mid, bottom := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"a", "b", "c"} {
		os.MkdirAll(filepath.Join(bottom, d), 0o755)
		os.WriteFile(filepath.Join(bottom, d, "f"), nil, 0o644)
	}
	os.MkdirAll(filepath.Join(mid, "b"), 0o755)
	unix.Setxattr(filepath.Join(mid, "b"), "trusted.overlay.opaque", []byte("y"), 0)
	unix.Mknod(filepath.Join(top, "c"), unix.S_IFCHR, 0)
	lower := []string{top, mid, bottom}
	for p, want := range map[string]bool{"a/f": true, "b/f": false, "b": true, "c/f": false, "c": false, "d": false} {
		if _, got := lowerLookup(lower, p); got != want {
			t.Errorf("%s: found %v, want %v", p, got, want)
		}
	}
}
