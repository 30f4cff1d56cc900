package container

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

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
