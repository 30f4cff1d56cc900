package imagetest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

var (
	busyboxOnce sync.Once
	busyboxTar  []byte
	busyboxDir  string
)

// BusyboxLayer returns a tarball of a busybox-static root file system and
// the directory it was made from (shared by the tests of the process;
// they must not change it).
func BusyboxLayer(t testing.TB) ([]byte, string) {
	t.Helper()
	busyboxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-busybox-")
		if err != nil {
			t.Fatal(err)
		}
		testutil.BusyboxRootfs(t, dir)
		// A few things a real image has: a setuid file, an owner other than
		// root, an xattr, a hard link, an empty file, a device node.
		os.WriteFile(filepath.Join(dir, "etc", "motd"), []byte("hello from berth\n"), 0o644)
		os.Chown(filepath.Join(dir, "etc", "motd"), 1000, 1001)
		os.WriteFile(filepath.Join(dir, "root", ".empty"), nil, 0o600)
		os.Chmod(filepath.Join(dir, "bin", "busybox"), 0o755|os.ModeSetuid)
		os.Link(filepath.Join(dir, "etc", "group"), filepath.Join(dir, "etc", "group-"))
		unix.Lsetxattr(filepath.Join(dir, "etc", "motd"), "user.berth", []byte("test"), 0)
		unix.Mknod(filepath.Join(dir, "dev", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		busyboxDir = dir
		busyboxTar = TarDir(t, dir)
	})
	if busyboxTar == nil {
		t.Fatal("no busybox layer")
	}
	return busyboxTar, busyboxDir
}

// TarDir makes a PAX tarball of dir, as a layer: owners, modes, times
// (nanoseconds), xattrs, symlinks, hard links and device nodes kept.
func TarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Format = tar.FormatPAX
		st := fi.Sys().(*syscall.Stat_t)
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := inodes[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				inodes[st.Ino] = rel
			}
		}
		if size, err := unix.Llistxattr(p, nil); err == nil && size > 0 {
			names := make([]byte, size)
			n, _ := unix.Llistxattr(p, names)
			for _, name := range strings.Split(strings.TrimRight(string(names[:n]), "\x00"), "\x00") {
				val := make([]byte, 4096)
				vn, err := unix.Lgetxattr(p, name, val)
				if err == nil {
					if hdr.PAXRecords == nil {
						hdr.PAXRecords = map[string]string{}
					}
					hdr.PAXRecords["SCHILY.xattr."+name] = string(val[:vn])
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fileState is what compareTrees compares of one file.
type fileState struct {
	mode    fs.FileMode
	uid     uint32
	gid     uint32
	rdev    uint64
	mtime   time.Time
	link    string
	content string
	xattrs  string
}

func treeState(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil // a layer has no entry for its root
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		s := fileState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, rdev: st.Rdev, mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			s.link, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.content = string(b)
		}
		if size, err := unix.Llistxattr(p, nil); err == nil && size > 0 {
			names := make([]byte, size)
			n, _ := unix.Llistxattr(p, names)
			list := strings.Split(strings.TrimRight(string(names[:n]), "\x00"), "\x00")
			sort.Strings(list)
			for _, name := range list {
				val := make([]byte, 4096)
				vn, _ := unix.Lgetxattr(p, name, val)
				s.xattrs += fmt.Sprintf("%s=%q;", name, val[:max(vn, 0)])
			}
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CompareTrees fails the test unless the two trees are the same, byte for
// byte and in metadata (the root directory itself aside).
func CompareTrees(t testing.TB, want, got string) {
	t.Helper()
	a, b := treeState(t, want), treeState(t, got)
	var diffs []string
	for name, sa := range a {
		sb, ok := b[name]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+name)
		case sa.mode != sb.mode || sa.uid != sb.uid || sa.gid != sb.gid || sa.rdev != sb.rdev || sa.link != sb.link || sa.xattrs != sb.xattrs:
			diffs = append(diffs, fmt.Sprintf("%s: want %v %d:%d dev %d ->%q %s, got %v %d:%d dev %d ->%q %s", name, sa.mode, sa.uid, sa.gid, sa.rdev, sa.link, sa.xattrs, sb.mode, sb.uid, sb.gid, sb.rdev, sb.link, sb.xattrs))
		case sa.content != sb.content:
			diffs = append(diffs, name+": content differs")
		case !sa.mtime.Equal(sb.mtime):
			diffs = append(diffs, fmt.Sprintf("%s: mtime %v, want %v", name, sb.mtime, sa.mtime))
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			diffs = append(diffs, "extra "+name)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], "...")
		}
		t.Fatalf("trees %s and %s differ:\n%s", want, got, strings.Join(diffs, "\n"))
	}
}

// ListTree lists every path under dir with its type and size, to show that
// an operation left it as it was.
func ListTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		out = append(out, fmt.Sprintf("%s %v %d", rel, fi.Mode().Type(), size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Cleanup removes what the helpers share between the tests of a process;
// call it from TestMain after m.Run.
func Cleanup() {
	if busyboxDir != "" {
		os.RemoveAll(busyboxDir)
	}
}
