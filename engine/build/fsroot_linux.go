package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// fsRoot is a directory whose paths resolve inside it. An image's root
// (inRoot) resolves like a container sees it: symlinks, absolute ones too,
// and ".." stay inside (openat2 RESOLVE_IN_ROOT). A build context resolves
// beneath its directory (RESOLVE_BENEATH): a symlink that would lead out is
// an error, never a silent redirect to another file.
type fsRoot struct {
	fd      int
	dir     string
	resolve uint64
}

func openFSRoot(dir string, inRoot bool) (*fsRoot, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	r := &fsRoot{fd: fd, dir: dir, resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if inRoot {
		r.resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	}
	return r, nil
}

func (r *fsRoot) close() { unix.Close(r.fd) }

// rel turns a slash path (absolute or not) into a clean relative one; "."
// is the root itself.
func rel(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// open opens p inside the root, following symlinks within it.
func (r *fsRoot) open(p string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat2(r.fd, rel(p), &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: r.resolve})
		if err == unix.EAGAIN || err == unix.EINTR {
			continue // a rename raced the lookup; try again
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: "/" + rel(p), Err: err}
		}
		return fd, nil
	}
}

// escapes reports whether err is a lookup that would have left the root.
func escapes(err error) bool { return errors.Is(err, unix.EXDEV) }

// openParent opens the directory that holds p (resolved inside the root)
// and returns it with p's last element.
func (r *fsRoot) openParent(p string) (int, string, error) {
	p = rel(p)
	if p == "." {
		return -1, "", fmt.Errorf("the root has no parent")
	}
	dir, base := path.Split(p)
	fd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	return fd, base, err
}

// lstat describes p itself (a symlink is not followed at the last element).
func (r *fsRoot) lstat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if rel(p) == "." {
		return st, unix.Fstat(r.fd, &st)
	}
	dfd, base, err := r.openParent(p)
	if err != nil {
		return st, err
	}
	defer unix.Close(dfd)
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: "/" + rel(p), Err: err}
	}
	return st, nil
}

// stat describes what p leads to.
func (r *fsRoot) stat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.open(p, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// readFile reads a small file inside the root; a missing file reads empty.
func (r *fsRoot) readFile(p string, limit int64) ([]byte, error) {
	fd, err := r.open(p, unix.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// owner is who created directories and files belong to.
type owner struct{ uid, gid int }

// mkdirAll makes directory p and its missing parents inside the root
// (mode 0755, owned by own) and returns an O_PATH descriptor of it.
func (r *fsRoot) mkdirAll(p string, own owner) (int, error) {
	p = rel(p)
	if fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
		return fd, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, err
	}
	parts := strings.Split(p, "/")
	cur := "."
	fd, err := r.open(cur, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	for _, part := range parts {
		next := path.Join(cur, part)
		nfd, err := r.open(next, unix.O_PATH|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(fd, part, 0o755); err != nil && err != unix.EEXIST {
				unix.Close(fd)
				return -1, &os.PathError{Op: "mkdir", Path: "/" + next, Err: err}
			}
			// mkdirat obeys the umask; set the mode and owner exactly.
			if err := unix.Fchownat(fd, part, own.uid, own.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				unix.Close(fd)
				return -1, &os.PathError{Op: "chown", Path: "/" + next, Err: err}
			}
			if err := unix.Fchmodat(fd, part, 0o755, 0); err != nil {
				unix.Close(fd)
				return -1, &os.PathError{Op: "chmod", Path: "/" + next, Err: err}
			}
			nfd, err = r.open(next, unix.O_PATH|unix.O_DIRECTORY, 0)
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("/%s is not a directory", next)
			}
			return -1, err
		}
		fd, cur = nfd, next
	}
	return fd, nil
}

// clearEntry removes what is at name in dir unless it is a directory
// (isDir reports which), so that a file or link can take its place.
func clearEntry(dfd int, name string) (isDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, nil
	}
	return false, unix.Unlinkat(dfd, name, 0)
}

// fdPath is the /proc path of a descriptor.
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// realPath is the host path a descriptor stands for.
func realPath(fd int) (string, error) { return os.Readlink(fdPath(fd)) }
