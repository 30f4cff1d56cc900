package container

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteInPlace: a container's /etc files and its bundle's config are
// written over the same inode at every start (their bind mounts stay on
// it), with exactly the new content, shorter or longer than the old.
func TestWriteInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := writeInPlace(path, []byte("127.0.0.1 localhost\n10.0.0.2 web web-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("a new file has mode %v, want 0644", st.Mode().Perm())
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	for _, content := range []string{"127.0.0.1 localhost\n", "127.0.0.1 localhost\n10.0.0.3 db db-1 a-longer-alias\n", ""} {
		if err := writeInPlace(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("after writing %q the file holds %q", content, got)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sys().(*syscall.Stat_t).Ino != ino {
			t.Fatalf("writing %q replaced the file (inode %d, was %d)", content, st.Sys().(*syscall.Stat_t).Ino, ino)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("an existing file's mode changed to %v", st.Mode().Perm())
		}
	}
}
