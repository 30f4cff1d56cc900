package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
)

// A container's paths are resolved inside its root filesystem with
// openat2(RESOLVE_IN_ROOT): a symlink in the image (/proc -> /) can never
// point a mount outside the rootfs. Mounts are then made onto
// /proc/self/fd/N of the resolved directory, never onto a path string
// that could be swapped between the check and the mount.

// rootDir is a container's root filesystem, open, before pivot_root.
type rootDir struct {
	path string
	fd   int // O_PATH of the rootfs bind mount's root
}

// openIn opens a container path inside the root, O_PATH.
func (r *rootDir) openIn(path string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(r.fd, path, &how)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: filepath.Join(r.path, path), Err: err}
	}
	return fd, nil
}

// ensure makes path exist inside the root, as a directory or as an empty
// file, with the directories above it, and opens it O_PATH. A dangling
// symlink on the way is followed inside the root: its target is created
// there, as runc does.
func (r *rootDir) ensure(path string, dir bool) (int, error) {
	return r.ensureDepth(path, dir, 0)
}

func (r *rootDir) ensureDepth(path string, dir bool, depth int) (int, error) {
	if depth > 40 {
		return -1, &os.PathError{Op: "create", Path: filepath.Join(r.path, path), Err: unix.ELOOP}
	}
	fd, err := r.openIn(path)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, base := filepath.Dir(path), filepath.Base(path)
	if base == "/" || base == "." || base == ".." {
		return -1, err
	}
	pfd, err := r.ensureDepth(parent, true, depth+1)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if target, lerr := readlinkat(pfd, base); lerr == nil {
		// A dangling symlink: make what it points to, inside the root.
		if !filepath.IsAbs(target) {
			target = filepath.Join(parent, target)
		}
		return r.ensureDepth(filepath.Clean("/"+target), dir, depth+1)
	}
	if dir {
		err = unix.Mkdirat(pfd, base, 0o755)
	} else {
		var f int
		f, err = unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &os.PathError{Op: "create", Path: filepath.Join(r.path, path), Err: err}
	}
	return r.openIn(path)
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountAt mounts onto the container path dest, creating it; for a bind
// mount, as a file when the source is one.
func (r *rootDir) mountAt(dest, source, fstype string, flags uintptr, data string, fileTarget bool) error {
	fd, err := r.ensure(dest, !fileTarget)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(source, fdPath(fd), fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", source, fstype, dest, err)
	}
	return nil
}

// remount changes the flags of the mount now at dest, keeping the flags a
// bind mount inherits and may not drop (nosuid, nodev, noexec of a mount
// locked by a user namespace).
func (r *rootDir) remount(dest string, flags uintptr) error {
	fd, err := r.openIn(dest)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return remountFd(fd, dest, flags)
}

func remountFd(fd int, name string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err == nil {
		flags |= lockedFlags(st.Flags)
	}
	if err := unix.Mount("", fdPath(fd), "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
		return fmt.Errorf("remount %s: %w", name, err)
	}
	return nil
}

// lockedFlags are the statfs flags a bind remount has to repeat.
func lockedFlags(f int64) uintptr {
	var out uintptr
	for _, m := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY, unix.MS_RDONLY},
	} {
		if f&m.st != 0 {
			out |= m.ms
		}
	}
	return out
}

// specMount makes one mount of the spec inside the root.
func (r *rootDir) specMount(m specs.Mount, bundle string, cgs []cgroups.Mount, userns bool) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return err
	}
	data := strings.Join(opts.data, ",")
	switch {
	case m.Type == "bind" || opts.bind:
		err = r.bindMount(m, bundle, opts)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		err = r.cgroupMount(m.Destination, opts, cgs)
	case m.Type == "sysfs":
		err = r.mountAt(m.Destination, m.Source, "sysfs", opts.flags, data, false)
		if errors.Is(err, unix.EPERM) && userns {
			// A user namespace without its own network namespace may not
			// mount sysfs; show the host's, read-only, as runc does.
			m.Source, m.Type = "/sys", "bind"
			opts.bind, opts.recursive = true, true
			opts.flags |= unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
			err = r.bindMount(m, bundle, opts)
		}
	default:
		source := m.Source
		if source == "" {
			source = m.Type
		}
		err = r.mountAt(m.Destination, source, m.Type, opts.flags, data, false)
	}
	if err != nil {
		return err
	}
	for _, p := range opts.propagation {
		fd, err := r.openIn(m.Destination)
		if err != nil {
			return err
		}
		err = unix.Mount("", fdPath(fd), "", p, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
		}
	}
	return nil
}

func (r *rootDir) bindMount(m specs.Mount, bundle string, opts mountOptions) error {
	source := m.Source
	if !filepath.IsAbs(source) {
		source = filepath.Join(bundle, source)
	}
	st, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("bind mount source: %w", err)
	}
	flags := unix.MS_BIND
	if opts.recursive {
		flags |= unix.MS_REC
	}
	if err := r.mountAt(m.Destination, source, "", uintptr(flags), "", !st.IsDir()); err != nil {
		return err
	}
	// A bind mount takes its flags from the source: ro, nosuid... need a remount.
	if opts.flags&^unix.MS_REC != 0 {
		if err := r.remount(m.Destination, opts.flags); err != nil {
			return err
		}
	}
	return nil
}

// cgroupMount shows the container its own cgroup at dest: on v2 its
// directory; on v1 a tmpfs with one directory per hierarchy, each the
// container's directory in that hierarchy, as Docker lays them out.
// Binding (rather than mounting cgroupfs anew) gives the same view with or
// without a cgroup namespace.
func (r *rootDir) cgroupMount(dest string, opts mountOptions, cgs []cgroups.Mount) error {
	ro := opts.flags&unix.MS_RDONLY != 0
	flags := opts.flags &^ unix.MS_RDONLY
	if len(cgs) == 1 && cgs[0].Name == "" {
		if err := r.mountAt(dest, cgs[0].Dir, "", unix.MS_BIND, "", false); err != nil {
			return err
		}
		return r.remount(dest, opts.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	}
	if err := r.mountAt(dest, "tmpfs", "tmpfs", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755", false); err != nil {
		return err
	}
	dfd, err := r.openIn(dest)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	// New mount API: clone each directory as a detached tree and move it
	// in, then one recursive mount_setattr makes the tmpfs and every bind
	// under it read-only, where the classic calls need a bind and a
	// remount per hierarchy.
	newAPI := true
	for _, c := range cgs {
		if err := unix.Mkdirat(dfd, c.Name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s/%s: %w", dest, c.Name, err)
		}
		if newAPI {
			err := moveTree(c.Dir, dfd, c.Name)
			if errors.Is(err, unix.ENOSYS) {
				newAPI = false
			} else if err != nil {
				return fmt.Errorf("bind %s on %s/%s: %w", c.Dir, dest, c.Name, err)
			}
		}
		if !newAPI {
			sub := filepath.Join(dest, c.Name)
			if err := r.mountAt(sub, c.Dir, "", unix.MS_BIND, "", false); err != nil {
				return err
			}
			if err := r.remount(sub, opts.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
				return err
			}
		}
		for _, a := range c.Aliases {
			if err := unix.Symlinkat(c.Name, dfd, a); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("symlink %s/%s: %w", dest, a, err)
			}
		}
	}
	if !ro {
		return nil
	}
	if newAPI {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
		err := unix.MountSetattr(dfd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("make %s read-only: %w", dest, err)
		}
	}
	return remountFd(dfd, dest, opts.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}

// moveTree bind-mounts source onto name in the directory dirfd, with the
// new mount API (open_tree and move_mount, Linux 5.2).
func moveTree(source string, dirfd int, name string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return unix.MoveMount(tree, "", dirfd, name, unix.MOVE_MOUNT_F_EMPTY_PATH)
}
