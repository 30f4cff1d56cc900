package container

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/overlay"
	"github.com/berth-dev/berth/internal/tarcopy"
)

// CopyFrom writes a tar of path as the running container sees it, its top
// entry named after path's last element (`cp CONTAINER:PATH ...`).
func (m *Manager) CopyFrom(ctx context.Context, ref, p string, w io.Writer) error {
	pid, err := m.runningPid(ref)
	if err != nil {
		return err
	}
	return inMountNamespace(pid, func() error {
		clean := path.Clean("/" + p)
		info, err := os.Lstat(clean)
		if err != nil {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("could not find the file %s in container %s", p, ref))
		}
		tw := tar.NewWriter(w)
		base := path.Base(clean)
		if clean == "/" {
			base = "."
		}
		if err := tarcopy.Add(tw, clean, base, info); err != nil {
			return err
		}
		return tw.Close()
	})
}

// CopyTo extracts a tar into the running container at dest: into dest when
// it is a directory, else as dest itself (the tar's top entry renamed), as
// docker cp does.
func (m *Manager) CopyTo(ctx context.Context, ref, dest string, r io.Reader) error {
	pid, err := m.runningPid(ref)
	if err != nil {
		return err
	}
	return inMountNamespace(pid, func() error {
		target := path.Clean("/" + dest)
		dir, rename := target, ""
		if info, err := os.Stat(target); err != nil || !info.IsDir() {
			dir, rename = path.Dir(target), path.Base(target)
			if _, err := os.Stat(dir); err != nil {
				return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("could not find the directory %s in container %s", dir, ref))
			}
		}
		return tarcopy.Extract(tar.NewReader(r), dir, rename)
	})
}

// Export writes a tar of the container's root filesystem: its image's
// layers with what the container changed over them, without its volumes
// or anything else mounted in it, as docker export does. It runs or not.
func (m *Manager) Export(ctx context.Context, ref string, w io.Writer) error {
	root, err := m.openRootfs(ctx, ref)
	if err != nil {
		return err
	}
	defer root.Close()
	// Through the open directory: the mount may be detached meanwhile (the
	// container ended, or see openRootfs), and stays while it is open.
	tw := tar.NewWriter(w)
	if err := tarcopy.AddChildren(tw, fmt.Sprintf("/proc/self/fd/%d", root.Fd()), ""); err != nil {
		return err
	}
	return tw.Close()
}

// openRootfs opens the root filesystem of container ref: the mount of a
// running one; for one that does not run, a read-only overlay of its
// changes over its image's layers, detached as soon as it is open, so
// that closing it unmounts it and nothing stays mounted if berth dies.
func (m *Manager) openRootfs(ctx context.Context, ref string) (*os.File, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	e.op.Lock()
	defer e.op.Unlock()
	c := e.c
	if c.State.Status == Running || c.State.Status == Paused {
		if mounted, err := isMountpoint(m.rootfsDir(c.ID)); err != nil || !mounted {
			return nil, fmt.Errorf("the root filesystem of running container %s is not mounted (%v)", c.Name, err)
		}
		return os.Open(m.rootfsDir(c.ID))
	}
	lower, err := m.images.Snapshots(ctx, c.ImageID)
	if err != nil {
		return nil, err
	}
	upper := filepath.Join(m.dir(c.ID), "fs", "upper")
	if _, err := os.Stat(upper); err != nil {
		return nil, fmt.Errorf("container %s has no file system: %w", c.Name, err)
	}
	if len(lower) == 0 {
		// A read-only overlay takes two layers at least: an image without
		// layers gets an empty one, as mountRootfs gives it.
		empty := filepath.Join(m.dir(c.ID), "fs", "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return nil, err
		}
		lower = []string{empty}
	}
	target, err := os.MkdirTemp(m.dir(c.ID), "export-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(target)
	if err := overlay.MountReadOnly(target, append([]string{upper}, lower...)); err != nil {
		return nil, fmt.Errorf("mount the file system of %s: %w", c.Name, err)
	}
	f, err := os.Open(target)
	if uerr := unix.Unmount(target, unix.MNT_DETACH); err == nil && uerr != nil {
		f.Close()
		return nil, fmt.Errorf("detach the file system of %s: %w", c.Name, uerr)
	}
	return f, err
}

func (m *Manager) runningPid(ref string) (int, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return 0, err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if e.c.State.Status != Running && e.c.State.Status != Paused {
		return 0, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is not running", e.c.Name))
	}
	return e.c.State.Pid, nil
}

// inMountNamespace runs fn on a thread of its own that has joined the
// mount namespace of pid (and with it that container's root). The thread
// first unshares its filesystem attributes, which setns into a mount
// namespace requires of a multi-threaded process; it is never given back
// to the scheduler, so no other goroutine ever runs in the container's view.
func inMountNamespace(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with this goroutine
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if err != nil {
			errc <- fmt.Errorf("container mount namespace: %w", err)
			return
		}
		defer ns.Close()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("enter container mount namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// RemovePath deletes path (and what is below it) in the running container,
// as the container sees it; a path that is not there is not an error.
func (m *Manager) RemovePath(ctx context.Context, ref, p string) error {
	pid, err := m.runningPid(ref)
	if err != nil {
		return err
	}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return errdefs.ErrInvalidArgument.WithMessage("refusing to remove the container's root")
	}
	return inMountNamespace(pid, func() error { return os.RemoveAll(clean) })
}
