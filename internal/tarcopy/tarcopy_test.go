package tarcopy

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestTreeRoundTripWithRename(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "conf")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "a.txt"), []byte("alpha"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/a.txt", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	info, _ := os.Lstat(tree)
	if err := Add(tw, tree, "conf", info); err != nil {
		t.Fatal(err)
	}
	tw.Close()

	dst := t.TempDir()
	if err := Extract(tar.NewReader(bytes.NewReader(buf.Bytes())), dst, "renamed"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "renamed", "sub", "a.txt"))
	if err != nil || string(got) != "alpha" {
		t.Fatalf("copied file: %q %v", got, err)
	}
	if link, _ := os.Readlink(filepath.Join(dst, "renamed", "link")); link != "sub/a.txt" {
		t.Fatalf("symlink: %q", link)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "renamed", "sub", "a.txt")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestExtractRefusesEntriesThatClimbOut(t *testing.T) {
	for _, name := range []string{"../escape", "/abs", "a/../../b"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x"))
		tw.Close()
		dst := t.TempDir()
		if err := Extract(tar.NewReader(&buf), filepath.Join(dst, "in"), ""); err == nil {
			t.Errorf("%q was extracted", name)
		}
	}
}

func TestExtractLeavesExistingDirectoriesAlone(t *testing.T) {
	dst := t.TempDir()
	if err := os.Mkdir(filepath.Join(dst, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dst, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "tmp/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	_, _ = tw.Write([]byte("x"))
	tw.Close()
	if err := Extract(tar.NewReader(&buf), dst, ""); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "tmp")); fi.Mode()&os.ModePerm != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Fatalf("existing directory's mode changed to %v", fi.Mode())
	}
}
