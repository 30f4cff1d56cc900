package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// unpacker writes one layer's tar stream into an empty directory, in the
// form overlayfs stacks: whiteouts become 0/0 character devices, opaque
// directories get trusted.overlay.opaque=y.
//
// It never writes outside root. Names are cleaned and refused when they
// climb out; every directory on the way to an entry is checked with lstat
// to be a real directory (the directory is private to the unpack, so
// nothing else can change it between the check and the write); the entry
// itself is created with calls that do not follow symlinks (O_EXCL|
// O_NOFOLLOW, mkdir, symlink, mknod, link without AT_SYMLINK_FOLLOW).
type unpacker struct {
	root     string
	dirs     map[string]bool         // layer paths checked to be real directories
	dirTimes map[string][2]time.Time // directory times, set last (children change them)
	free     int64                   // bytes still free on the file system
	size     int64                   // bytes of regular files written
	buf      []byte
}

// unpackTar unpacks the tar stream r into the empty directory root and
// returns the bytes of file content it wrote.
func unpackTar(ctx context.Context, r io.Reader, root string) (int64, error) {
	u := &unpacker{root: root, dirs: map[string]bool{".": true}, dirTimes: map[string][2]time.Time{}, buf: make([]byte, 256<<10)}
	free, err := freeSpace(root)
	if err != nil {
		return 0, err
	}
	u.free = free
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, badTar(err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, storageError(err)
		}
	}
	for rel, t := range u.dirTimes {
		ts := []unix.Timespec{unix.NsecToTimespec(t[0].UnixNano()), unix.NsecToTimespec(t[1].UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("set times of %s: %w", rel, err)
		}
	}
	return u.size, nil
}

// badTar turns a tar reading error into a clear invalid-argument error.
func badTar(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return classed(errdefs.ErrInvalidArgument, fmt.Errorf("layer tar is truncated: %w", err))
	}
	var ce *classError
	if errors.As(err, &ce) || errdefs.IsDataLoss(err) || errdefs.IsCanceled(err) {
		return err
	}
	return classed(errdefs.ErrInvalidArgument, fmt.Errorf("layer tar is corrupt: %w", err))
}

func (u *unpacker) entry(hdr *tar.Header, tr io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Uid < 0 || hdr.Gid < 0 {
		return invalidLayer(hdr.Name, "negative owner")
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return invalidLayer(hdr.Name, "the layer's root is not a directory")
		}
		return u.metadata(u.root, rel, hdr, true)
	}
	if base := path.Base(rel); strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(rel, hdr)
	}
	if err := u.ensureDir(path.Dir(rel)); err != nil {
		return err
	}
	full := filepath.Join(u.root, rel)
	if fi, err := os.Lstat(full); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
		// A later entry replaces an earlier one of the same name.
		if err := os.RemoveAll(full); err != nil {
			return err
		}
		u.forget(rel)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(full, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		u.dirs[rel] = true
		return u.metadata(full, rel, hdr, true)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.file(full, rel, hdr, tr)
	case tar.TypeSymlink:
		if symlinkEscapes(rel, hdr.Linkname) {
			return invalidLayer(hdr.Name, fmt.Sprintf("symlink to %q points outside the layer", hdr.Linkname))
		}
		if strings.IndexByte(hdr.Linkname, 0) >= 0 || hdr.Linkname == "" {
			return invalidLayer(hdr.Name, "bad symlink target")
		}
		if err := unix.Symlink(hdr.Linkname, full); err != nil {
			return fmt.Errorf("symlink %s: %w", rel, err)
		}
		return u.metadata(full, rel, hdr, false)
	case tar.TypeLink:
		target, err := cleanLinkTarget(hdr.Name, hdr.Linkname)
		if err != nil {
			return err
		}
		if err := u.ensureDir(path.Dir(target)); err != nil {
			return err
		}
		tfull := filepath.Join(u.root, target)
		fi, err := os.Lstat(tfull)
		if err != nil || fi.IsDir() {
			return invalidLayer(hdr.Name, fmt.Sprintf("hard link to %q, which is not a file earlier in the layer", hdr.Linkname))
		}
		if err := os.Link(tfull, full); err != nil {
			return fmt.Errorf("hard link %s: %w", rel, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(full, mode, int(dev)); err != nil {
			return fmt.Errorf("mknod %s: %w", rel, err)
		}
		return u.metadata(full, rel, hdr, false)
	}
	return invalidLayer(hdr.Name, fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag))
}

// file writes a regular file.
func (u *unpacker) file(full, rel string, hdr *tar.Header, tr io.Reader) error {
	if hdr.Size > u.free {
		return classed(errdefs.ErrResourceExhausted, fmt.Errorf("layer entry %q claims %d bytes, more than the %d bytes free", hdr.Name, hdr.Size, u.free))
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(writerOnly{f}, tr, u.buf)
	u.size += n
	u.free -= n
	if err != nil {
		f.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return classed(errdefs.ErrInvalidArgument, fmt.Errorf("layer tar is truncated in %q: %w", hdr.Name, err))
		}
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return u.metadata(full, rel, hdr, false)
}

// writerOnly hides os.File's ReadFrom, which would bypass the buffer.
type writerOnly struct{ io.Writer }

// whiteout turns a .wh. entry into its overlayfs form.
func (u *unpacker) whiteout(rel string, hdr *tar.Header) error {
	dir, base := path.Dir(rel), path.Base(rel)
	if base == whiteoutOpaque {
		if err := u.ensureDir(dir); err != nil {
			return err
		}
		if err := unix.Lsetxattr(filepath.Join(u.root, dir), overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque: %w", dir, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // AUFS bookkeeping (.wh..wh.plnk...), meaningless to overlayfs
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return invalidLayer(hdr.Name, "bad whiteout")
	}
	target := path.Join(dir, name)
	if err := u.ensureDir(dir); err != nil {
		return err
	}
	full := filepath.Join(u.root, target)
	if _, err := os.Lstat(full); err == nil {
		if err := os.RemoveAll(full); err != nil {
			return err
		}
		u.forget(target)
	}
	if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", target, err)
	}
	return os.Lchown(full, hdr.Uid, hdr.Gid)
}

// ensureDir makes sure the layer path rel is a real directory, creating
// missing ones (0755, as docker does) and refusing to go through anything
// else (a symlink an earlier entry made, a file).
func (u *unpacker) ensureDir(rel string) error {
	if rel == "." || u.dirs[rel] {
		return nil
	}
	if err := u.ensureDir(path.Dir(rel)); err != nil {
		return err
	}
	full := filepath.Join(u.root, rel)
	fi, err := os.Lstat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(full, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return invalidLayer(rel, "a later entry would be written through this symlink or file; refused")
	}
	u.dirs[rel] = true
	return nil
}

// forget drops what is known of rel and everything below it, after it was
// replaced.
func (u *unpacker) forget(rel string) {
	prefix := rel + "/"
	for d := range u.dirs {
		if d == rel || strings.HasPrefix(d, prefix) {
			delete(u.dirs, d)
		}
	}
	for d := range u.dirTimes {
		if d == rel || strings.HasPrefix(d, prefix) {
			delete(u.dirTimes, d)
		}
	}
}

// metadata applies owner, mode, xattrs and times; a directory's times wait
// for the end of the layer.
func (u *unpacker) metadata(full, rel string, hdr *tar.Header, isDir bool) error {
	if err := os.Lchown(full, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %s: %w", rel, err)
	}
	isLink := hdr.Typeflag == tar.TypeSymlink
	if !isLink {
		// After chown, which clears set-user-ID bits.
		if err := unix.Chmod(full, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	for k, v := range xattrs(hdr) {
		if strings.HasPrefix(k, overlayXattrPrefix) {
			continue // overlayfs's own; a layer must not forge them
		}
		if err := unix.Lsetxattr(full, k, []byte(v), 0); err != nil {
			if isLink && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP)) {
				continue // user.* attributes cannot be set on symlinks
			}
			return fmt.Errorf("set xattr %s on %s: %w", k, rel, err)
		}
	}
	mtime := hdr.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	if isDir {
		u.dirTimes[rel] = [2]time.Time{atime, mtime}
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", rel, err)
	}
	return nil
}
