package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/overlay"
)

// mountRootfs stacks the image's snapshots (topmost first) under the
// container's upper dir with overlayfs at the bundle's rootfs.
func (m *Manager) mountRootfs(id string, lower []string) error {
	fs := filepath.Join(m.dir(id), "fs")
	upper, work, target := filepath.Join(fs, "upper"), filepath.Join(fs, "work"), m.rootfsDir(id)
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if len(lower) == 0 {
		// overlayfs needs a lower layer; an image without layers gets an empty one.
		empty := filepath.Join(fs, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		lower = []string{empty}
	}
	if err := overlay.Mount(target, lower, upper, work); err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", id, err)
	}
	return nil
}

// mountImage mounts container id's root filesystem from image imageID,
// unless it is mounted already: create mounts it, and start mounts it
// again after a stop (or a restart of the daemon, which unmounts what
// does not run).
func (m *Manager) mountImage(ctx context.Context, id, imageID string) error {
	target := m.rootfsDir(id)
	if mounted, err := isMountpoint(target); err != nil || mounted {
		return err
	}
	lower, err := m.images.Snapshots(ctx, imageID)
	if err != nil {
		return err
	}
	return m.mountRootfs(id, lower)
}

// isMountpoint says whether a file system is mounted on dir: its device
// differs from its parent's (an overlay has a device of its own). A
// missing dir is not one.
func isMountpoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

// unmountRootfs undoes mountRootfs; it is a no-op when nothing is mounted.
func (m *Manager) unmountRootfs(id string) error {
	target := m.rootfsDir(id)
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		if err == nil {
			continue // stacked mounts: take them all
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("unmount rootfs of %s: %w", id, err)
	}
}

// UpperDir is the directory that holds container id's changes to its
// image (its overlay upper dir; made when the container first starts).
// `container diff` and `commit` read it.
func (m *Manager) UpperDir(id string) string { return filepath.Join(m.dir(id), "fs", "upper") }
