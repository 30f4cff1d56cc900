package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CVE-2019-5736: a container process that can open the setup stage's
// /proc/PID/exe for writing (through a handle taken while setup runs, or
// when berth is re-executed inside it for an exec) would overwrite the
// host's berth binary and own the host on its next run. So the setup stage
// never runs from the host's file:
//
//   - first choice, free: an overlayfs mount made with fsopen and never
//     attached anywhere, with the binary's directory as its only real lower
//     layer and no upper layer. It shares the page cache with the host file,
//     cannot be written at all (there is no upper layer to write to), and,
//     unlike a read-only bind mount, cannot be remounted read-write by a
//     process that gets hold of it. It appears in no mount table, so
//     nothing has to unmount it; the open handle keeps it alive.
//   - fallback (no overlayfs, old kernel): a sealed memfd copy.
//
// The setup stage also makes itself non-dumpable at once, which keeps
// unprivileged container processes from opening /proc/PID/exe at all.

// sealBinary returns an O_PATH handle of a read-only view of the binary at
// path; scratch is an empty directory overlayfs needs as a second layer.
// copied is set when it had to copy the binary (the slow fallback).
func sealBinary(path, scratch string) (f *os.File, copied bool, err error) {
	f, errOverlay := overlayBinary(path, scratch)
	if errOverlay == nil {
		return f, false, nil
	}
	f, err = memfdBinary(path)
	if err != nil {
		return nil, false, fmt.Errorf("seal %s: overlayfs: %v; memfd: %w", path, errOverlay, err)
	}
	return f, true, nil
}

func overlayBinary(path, scratch string) (*os.File, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, err
	}
	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(ctx)
	// Two lower layers and no upper one make a read-only overlay; the
	// binary's own directory goes on top so nothing in scratch hides it.
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `:`, `\:`) }
	lower := esc(filepath.Dir(real)) + ":" + esc(scratch)
	if err := unix.FsconfigSetString(ctx, "lowerdir", lower); err != nil {
		return nil, fmt.Errorf("overlay lowerdir=%s: %w", lower, err)
	}
	_ = unix.FsconfigSetString(ctx, "xino", "off")
	if err := unix.FsconfigCreate(ctx); err != nil {
		return nil, fmt.Errorf("overlay create: %w", err)
	}
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(real), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in overlay: %w", filepath.Base(real), err)
	}
	return os.NewFile(uintptr(fd), "berth (read-only overlay)"), nil
}

func memfdBinary(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth (sealed memfd)")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}
