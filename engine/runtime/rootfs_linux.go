package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the nodes every container's /dev has (runc's and
// Docker's list), beside those the spec adds.
func defaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
	}
}

// setupRootfs makes the container's mounts inside rootfs, still seen from
// the host's root: propagation first, so nothing made here reaches the
// host; then the rootfs bind-mounted on itself (pivot_root wants a mount
// point); the spec's mounts in order; and /dev's nodes.
func (s *setup) setupRootfs() error {
	spec := s.boot.Spec
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := spec.Linux.RootfsPropagation; p != "" {
		prop = propagationFlag(p)
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return step("make / "+spec.Linux.RootfsPropagation, err)
	}
	if prop&unix.MS_SHARED != 0 {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := makeParentPrivate(s.boot.Rootfs); err != nil {
			return step("make the rootfs's parent mount private", err)
		}
	}
	rootfs := s.boot.Rootfs
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return step("bind the rootfs onto itself", fmt.Errorf("%s: %w", rootfs, err))
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return step("open the rootfs", fmt.Errorf("%s: %w", rootfs, err))
	}
	s.root = &rootDir{path: rootfs, fd: fd}
	userns := s.boot.isNew(specs.UserNamespace)
	devIsTmpfs := false
	for _, m := range spec.Mounts {
		if err := s.root.specMount(m, s.bundle(), s.boot.Cgroups, userns); err != nil {
			return step("mount "+m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" {
			devIsTmpfs = m.Type != "bind" && !containsOpt(m.Options, "bind") && !containsOpt(m.Options, "rbind")
		}
	}
	if devIsTmpfs {
		if err := s.setupDev(userns); err != nil {
			return step("populate /dev", err)
		}
	}
	return nil
}

func containsOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// bundle is the bundle directory, which relative bind sources are relative to.
func (s *setup) bundle() string { return s.boot.Bundle }

// makeParentPrivate makes the mount holding path private.
func makeParentPrivate(path string) error {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		err := unix.Mount("", p, "", unix.MS_PRIVATE, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || p == "/" {
			return err
		}
		// EINVAL: p is not a mount point; try the directory above.
	}
}

// setupDev fills the container's fresh /dev: the default nodes and the
// spec's, the standard symlinks, and /dev/ptmx pointing into devpts. In a
// user namespace mknod is not allowed, so nodes are bind mounts of the
// host's.
func (s *setup) setupDev(userns bool) error {
	devices := append(defaultDevices(), s.boot.Spec.Linux.Devices...)
	seen := map[string]bool{}
	for i := len(devices) - 1; i >= 0; i-- { // the spec's entries win
		d := devices[i]
		if seen[d.Path] {
			continue
		}
		seen[d.Path] = true
		if err := s.makeDevice(d, userns); err != nil {
			return err
		}
	}
	dfd, err := s.root.openIn("/dev")
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	}
	if fd, err := s.root.openIn("/dev/pts/ptmx"); err == nil {
		unix.Close(fd)
		links = append(links, [2]string{"pts/ptmx", "ptmx"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dfd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

func (s *setup) makeDevice(d specs.LinuxDevice, userns bool) error {
	if !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
		return fmt.Errorf("device %s is not under /dev", d.Path)
	}
	if userns {
		host, err := os.Stat(d.Path)
		if err != nil {
			return fmt.Errorf("device %s: the host has none to bind: %w", d.Path, err)
		}
		if host.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("device %s: not a device on the host", d.Path)
		}
		return s.root.mountAt(d.Path, d.Path, "", unix.MS_BIND, "", true)
	}
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
	case "b":
		mode = unix.S_IFBLK
	case "p":
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	parent, base := filepath.Dir(d.Path), filepath.Base(d.Path)
	pfd, err := s.root.ensure(parent, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	// O_PATH descriptors serve as dirfd for mknodat and fchownat.
	if err := unix.Mknodat(pfd, base, mode|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
	}
	return nil
}

// pivotRoot makes the rootfs the root of the mount namespace and detaches
// the host's tree. pivot_root rather than chroot: a chroot can be left
// (chdir .. from a directory held open, or a second chroot), a detached
// old root cannot be reached at all.
func (s *setup) pivotRoot() error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(s.root.path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	// pivot_root(".", ".") stacks the old root on top of the new one, with
	// no directory needed inside the rootfs to park it in.
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", s.root.path, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// Make sure the unmount below does not propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make the old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	unix.Close(s.root.fd)
	s.root.fd = -1
	return unix.Chdir("/")
}

// readonlyPath makes path read-only in place (a bind of itself, remounted).
func readonlyPath(path string) error {
	if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return remountFd(fd, path, unix.MS_RDONLY)
}

// maskPath hides path: /dev/null over a file, an empty read-only tmpfs over
// a directory.
func maskPath(path string) error {
	err := unix.Mount("/dev/null", path, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) {
		err = unix.Mount("tmpfs", path, "tmpfs", unix.MS_RDONLY, "size=0k,mode=000")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	return nil
}

// finishRootfs runs inside the new root: sysctls, masked and read-only
// paths, and the root itself read-only last.
func (s *setup) finishRootfs() error {
	spec := s.boot.Spec
	for k, v := range spec.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := writeProcFile(p, v); err != nil {
			return step("sysctl "+k, err)
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return step("read-only path "+p, err)
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return step("masked path "+p, err)
		}
	}
	if spec.Root.Readonly {
		fd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return step("read-only root", err)
		}
		err = remountFd(fd, "/", unix.MS_RDONLY)
		unix.Close(fd)
		if err != nil {
			return step("read-only root", err)
		}
	}
	return nil
}

func writeProcFile(path, value string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}
