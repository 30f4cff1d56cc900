package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Tag gives the image source the name target (moving target from any
// image that had it).
func (s *Store) Tag(ctx context.Context, source, target string) error {
	r, err := ParseReference(target)
	if err != nil {
		return err
	}
	if r.Digest != "" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("tag %s: a tag cannot be a digest reference", target))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := lookup(s.index, source)
	if err != nil {
		return err
	}
	return s.updateLocked(func(ix *index) error {
		ix.setName(r.String(), rec.ID, time.Now().UTC())
		return nil
	})
}

// Remove removes a name or an image, as `docker rmi` does: a name that is
// not the image's last goes alone; the last name takes the image with it,
// unless containers lease the image (then Force removes only the name); an
// image ID removes every name, with Force when there are several. Content
// no other image needs is deleted with the image.
func (s *Store) Remove(ctx context.Context, ref string, opts RemoveOptions) ([]Deletion, error) {
	s.mu.Lock()
	leased := s.leasedLocked()
	var out []Deletion
	var deleteID string
	var untag []string
	if r, err := ParseReference(ref); err == nil && r.Digest == "" && s.index.names[r.String()] != "" {
		rec := s.index.Images[s.index.names[r.String()]]
		untag = []string{r.String()}
		if len(rec.Names) == 1 {
			switch holders := leased[rec.ID]; {
			case len(holders) == 0:
				deleteID = rec.ID
			case !opts.Force:
				s.mu.Unlock()
				return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, shortID(holders[0]), shortID(rec.ID)))
			}
		}
	} else {
		rec, err := lookup(s.index, ref)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if holders := leased[rec.ID]; len(holders) > 0 {
			s.mu.Unlock()
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by container %s", shortID(rec.ID), shortID(holders[0])))
		}
		if len(rec.Names) > 1 && !opts.Force {
			s.mu.Unlock()
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(rec.ID)))
		}
		untag = rec.Names
		deleteID = rec.ID
	}
	err := s.updateLocked(func(ix *index) error {
		for _, n := range untag {
			ix.removeName(n)
		}
		if deleteID != "" {
			delete(ix.Images, deleteID)
		}
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("remove %s: %w", ref, err)
	}
	for _, n := range untag {
		out = append(out, Deletion{Untagged: Familiar(n)})
	}
	var trash string
	if deleteID != "" {
		out = append(out, Deletion{Deleted: deleteID})
		_, trash, err = s.collectLocked()
	}
	s.mu.Unlock()
	if trash != "" {
		os.RemoveAll(trash)
	}
	return out, err
}

var holderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Lease records that holder (a container ID, a build) uses the image ref,
// so that rm and prune keep it and its content, and returns its ID.
// A holder may lease several images; leases survive restarts, not
// always a power cut (see leaseLocked).
func (s *Store) Lease(ctx context.Context, holder, ref string) (id string, err error) {
	return s.lease(holder, ref, s.leaseLocked)
}

// LeaseInMemory is Lease without a file: the lease ends with the store's
// process, and the holder must lease again once the store is opened anew.
// The container engine does, from its records, before anything can
// remove an image; a create then writes no lease file.
func (s *Store) LeaseInMemory(ctx context.Context, holder, ref string) (id string, err error) {
	return s.lease(holder, ref, func(holder, id string) error {
		if ids := s.leases[holder]; !slices.Contains(ids, id) {
			s.leases[holder] = append(slices.Clone(ids), id)
		}
		return nil
	})
}

// lease resolves ref and has record (called with s.mu held) lease it to
// holder.
func (s *Store) lease(holder, ref string, record func(holder, id string) error) (string, error) {
	if !holderName.MatchString(holder) {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad lease holder %q", holder))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := lookup(s.index, ref)
	if err != nil {
		return "", err
	}
	if err := record(holder, rec.ID); err != nil {
		return "", err
	}
	return rec.ID, nil
}

func (s *Store) leaseLocked(holder, id string) error {
	ids := s.leases[holder]
	if slices.Contains(ids, id) {
		return nil
	}
	next := append(slices.Clone(ids), id)
	b, _ := json.Marshal(next)
	// Not synced: a holder leases again what a power cut lost (the
	// container engine does from its records when it starts; the build
	// cache would only rebuild).
	if err := atomicfile.WriteVolatile(filepath.Join(s.dir, "leases", holder), b, 0o600); err != nil {
		return fmt.Errorf("lease image %s to %s: %w", shortID(id), holder, err)
	}
	s.leases[holder] = next
	return nil
}

// Release drops every lease of holder. Releasing a holder without leases
// is not an error.
func (s *Store) Release(ctx context.Context, holder string) error {
	if !holderName.MatchString(holder) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad lease holder %q", holder))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, "leases", holder)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s: %w", holder, err)
	}
	delete(s.leases, holder)
	return nil
}

// Leases returns every holder with the image IDs it leases.
func (s *Store) Leases() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.leases))
	for h, ids := range s.leases {
		out[h] = slices.Clone(ids)
	}
	return out
}

func (s *Store) readLeases() error {
	entries, err := os.ReadDir(filepath.Join(s.dir, "leases"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !holderName.MatchString(e.Name()) {
			continue // a temporary file of an interrupted write
		}
		b, err := os.ReadFile(filepath.Join(s.dir, "leases", e.Name()))
		if err != nil {
			return err
		}
		var ids []string
		if err := json.Unmarshal(b, &ids); err != nil {
			return fmt.Errorf("lease %s: %w", e.Name(), err)
		}
		s.leases[e.Name()] = ids
	}
	return nil
}

// matchesAny reports whether one of names matches one of the patterns,
// in full or familiar form, with or without its tag.
func matchesAny(names, patterns []string) bool {
	for _, n := range names {
		forms := []string{n}
		if r, err := ParseReference(n); err == nil {
			forms = append(forms, r.Name(), r.Familiar(), r.FamiliarName())
		}
		for _, p := range patterns {
			for _, f := range forms {
				if ok, _ := path.Match(p, f); ok {
					return true
				}
			}
		}
	}
	return false
}
