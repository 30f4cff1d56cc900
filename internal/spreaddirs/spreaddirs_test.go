package spreaddirs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// ext4's magic number, which ext2 and ext3 share.
const extMagic = 0xEF53

func TestMarkSetsTheFlagOnExt4(t *testing.T) {
	// /var/tmp: on disk, where a state root lives (t.TempDir may be tmpfs).
	dir, err := os.MkdirTemp("/var/tmp", "spreaddirs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := Mark(dir); err != nil {
		t.Fatal(err)
	}
	if err := Mark(dir); err != nil {
		t.Fatalf("marking twice: %v", err)
	}
	marked, err := Marked(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type == extMagic && !marked {
		t.Fatalf("%s is on ext2/3/4 and has no top-directory flag after Mark", dir)
	}
	if st.Type != extMagic {
		t.Logf("%s is not on ext2/3/4 (magic %#x): Mark left it as is, marked=%v", dir, st.Type, marked)
	}
	// The flag places new subdirectories; they are made as usual.
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestMarkOnTmpfsDoesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := Mark(dir); err != nil {
		t.Fatalf("Mark on tmpfs: %v, want nil", err)
	}
}
