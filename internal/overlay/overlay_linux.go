// Package overlay mounts overlayfs stacks of any depth.
//
// mount(2) takes its options in one page, which holds about 40 layers at
// the length of berth's snapshot paths. Deeper stacks (images of many
// steps are common) go through the new mount API, one fsconfig call per
// layer with "lowerdir+" (Linux 6.8 and later). Shallow stacks keep the
// single mount(2) call, the faster of the two.
package overlay

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts at target an overlay of lower (topmost first) under upper,
// with work as overlayfs's work directory.
func Mount(target string, lower []string, upper, work string) error {
	if len(lower) == 0 {
		return errors.New("overlay: no lower layer")
	}
	opts := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) < unix.Getpagesize() {
		return unix.Mount("overlay", target, "overlay", 0, opts)
	}
	return mountDeep(target, lower, upper, work)
}

// MountReadOnly mounts at target a read-only overlay of lower (topmost
// first), with no upper layer: a view that nothing writes to.
func MountReadOnly(target string, lower []string) error {
	if len(lower) == 0 {
		return errors.New("overlay: no lower layer")
	}
	opts := "lowerdir=" + strings.Join(lower, ":")
	if len(opts) < unix.Getpagesize() {
		return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts)
	}
	return mountDeep(target, lower, "", "")
}

// mountDeep builds the mount with fsopen and one fsconfig per layer;
// without upper, read-only.
func mountDeep(target string, lower []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%d layers: fsopen overlay: %w", len(lower), err)
	}
	defer unix.Close(fd)
	for _, l := range lower {
		if len(l) >= 256 {
			return fmt.Errorf("overlay lower %s: longer than the 255 bytes fsconfig takes", l)
		}
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("%d layers are more than one mount(2) call holds, and this kernel's overlayfs has no lowerdir+ (Linux 6.8): flatten the image", len(lower))
			}
			return fmt.Errorf("overlay lower %s: %w", l, err)
		}
	}
	attrs := 0
	if upper == "" {
		attrs = unix.MOUNT_ATTR_RDONLY
	} else {
		if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
			return fmt.Errorf("overlay upper %s: %w", upper, err)
		}
		if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
			return fmt.Errorf("overlay work %s: %w", work, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay of %d layers: %w", len(lower), err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move overlay to %s: %w", target, err)
	}
	return nil
}
