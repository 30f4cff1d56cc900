package volume

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/spreaddirs"
)

// Store keeps the volumes of one state root.
type Store struct {
	dir string
	mu  sync.Mutex // serialises create and remove, so a name is made once
}

// Open returns the store kept in dir (ROOT/volumes), creating it if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	// Anonymous volumes come and go with their containers (see spreaddirs).
	_ = spreaddirs.Mark(dir)
	return &Store{dir: dir}, nil
}

func (s *Store) metaPath(name string) string { return filepath.Join(s.dir, name, "volume.json") }

// Create makes a volume, or returns the existing one of that name when its
// driver and options agree (as docker does, so `up` can create idempotently).
func (s *Store) Create(opts CreateOptions) (Volume, error) {
	if opts.Driver != "" && opts.Driver != "local" {
		return Volume{}, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("volume %s: driver %q is not supported (only local)", opts.Name, opts.Driver))
	}
	if err := checkOptions(opts.Name, opts.Options); err != nil {
		return Volume{}, err
	}
	name := opts.Name
	if name == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		name, opts.Anonymous = hex.EncodeToString(b), true
	} else if !validName.MatchString(name) {
		return Volume{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters", name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, err := s.get(name); err == nil {
		if !maps.Equal(v.Options, opts.Options) && len(opts.Options) > 0 {
			return Volume{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("volume %s exists with other driver options", name))
		}
		return v, nil
	}
	v := Volume{
		Name: name, Driver: "local", Scope: "local", Anonymous: opts.Anonymous,
		Mountpoint: filepath.Join(s.dir, name, "_data"),
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Labels:     orEmpty(opts.Labels), Options: orEmpty(opts.Options),
	}
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	// The metadata file is written last: a volume directory without it is
	// a crash in the middle of create, which Open-time cleanup removes.
	if err := atomicfile.WriteJSON(s.metaPath(name), v, 0o600); err != nil {
		os.RemoveAll(filepath.Join(s.dir, name))
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, nil
}

func checkOptions(name string, o map[string]string) error {
	if len(o) == 0 {
		return nil
	}
	if o["type"] == "none" && o["o"] == "bind" {
		dev := o["device"]
		if !filepath.IsAbs(dev) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volume %s: bind device %q must be an absolute path", name, dev))
		}
		if info, err := os.Stat(dev); err != nil || !info.IsDir() {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volume %s: bind device %s is not a directory", name, dev))
		}
		return nil
	}
	return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("volume %s: driver_opts %v are not supported (the local driver here takes type: none, o: bind, device: PATH)", name, o))
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Get returns the volume called name.
func (s *Store) Get(name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (Volume, error) {
	var v Volume
	if name == "" || filepath.Base(name) != name {
		return v, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such volume: %q", name))
	}
	if err := atomicfile.ReadJSON(s.metaPath(name), &v); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return v, errdefs.ErrNotFound.WithMessage("no such volume: " + name)
		}
		return v, err
	}
	return v, nil
}

// List returns every volume whose labels include all of labels, by name.
func (s *Store) List(sel map[string]string) ([]Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		v, err := s.Get(e.Name())
		if err != nil {
			continue
		}
		if labels.Match(v.Labels, sel) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b Volume) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Remove deletes a volume and its data. users are the containers that use
// it; a volume in use is refused unless force is set.
func (s *Store) Remove(name string, users []string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	if len(users) > 0 && !force {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove volume %s: in use by %v", name, users))
	}
	// Metadata first: a crash after it leaves a directory that cleanup removes.
	if err := os.Remove(s.metaPath(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Prune removes the volumes that inUse says no container uses, and that
// match labels; by default (all false) only anonymous ones, as docker does.
func (s *Store) Prune(inUse func(name string) bool, sel map[string]string, all bool) ([]string, error) {
	vols, err := s.List(sel)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		if inUse(v.Name) || (!all && !v.Anonymous) {
			continue
		}
		if err := s.Remove(v.Name, nil, false); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
	}
	return removed, errors.Join(errs...)
}

// Repair removes volume directories that a crash left without metadata.
func (s *Store) Repair() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if _, err := os.Stat(s.metaPath(e.Name())); errors.Is(err, os.ErrNotExist) {
			if os.RemoveAll(filepath.Join(s.dir, e.Name())) == nil {
				removed = append(removed, e.Name())
			}
		}
	}
	return removed, nil
}

// DiskUsage is the size of the files in a volume's data directory (not
// the bind device of a bind-style volume, which is not the volume's).
func (s *Store) DiskUsage(name string) (int64, error) {
	v, err := s.Get(name)
	if err != nil {
		return 0, err
	}
	var total int64
	err = filepath.WalkDir(v.Mountpoint, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking: not counted
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}
