package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// lockStore takes the store's flock, so two processes never write one store.
func lockStore(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if err := flock.Exclusive(f, flock.ForkWait); err != nil {
		f.Close()
		if errors.Is(err, flock.ErrHeld) {
			return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("image store %s is in use by another process", filepath.Dir(path)))
		}
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	return f, nil
}

// classError gives err an errdefs class while keeping err itself in the
// chain (errors.Is finds both), and prints as err.
type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.err, e.class} }

func classed(class, err error) error {
	if err == nil {
		return nil
	}
	return &classError{class: class, err: err}
}

// storageError classes a full disk or quota as resource exhausted, so the
// user sees "no space left on device" with its class across the socket.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return classed(errdefs.ErrResourceExhausted, err)
	}
	return err
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return storageError(err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return storageError(fmt.Errorf("write %s: %w", path, err))
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return storageError(fmt.Errorf("write %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		return storageError(fmt.Errorf("write %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return storageError(fmt.Errorf("sync %s: %w", dir, err))
	}
	return nil
}

// syncFS flushes the file system holding path: one call after unpacking a
// layer instead of an fsync per file.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return storageError(fmt.Errorf("sync %s: %w", path, err))
	}
	return nil
}

// emptyDir removes everything inside dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// freeSpace is the space left to unprivileged writers on the file system of path.
func freeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
