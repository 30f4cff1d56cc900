package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Content of the store is named by keys in holds and in garbage
// collection: "blob/<digest>" for a blob, "snap/<diff ID>" for a snapshot.
func blobKey(d v1.Hash) string { return "blob/" + d.String() }
func snapKey(d v1.Hash) string { return "snap/" + d.String() }

// txn tracks what one operation (a pull, a load...) holds and what it added
// to the store: holds keep the content from garbage collection while the
// operation runs; if the operation fails, end takes back what it added
// that nothing else uses, so the store is as it was.
type txn struct {
	s     *Store
	held  []string
	added []string
}

func (s *Store) begin() *txn { return &txn{s: s} }

// hold keeps content from garbage collection until end.
func (t *txn) hold(keys ...string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.holdLocked(keys...)
}

func (t *txn) holdLocked(keys ...string) {
	for _, k := range keys {
		t.s.holds[k]++
	}
	t.held = append(t.held, keys...)
}

// add records content the operation put in the store.
func (t *txn) add(key string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.added = append(t.added, key)
}

// end releases the operation's holds; after a failure (failed true) it
// removes what the operation added that no image references and no other
// operation holds.
func (t *txn) end(failed bool) {
	s := t.s
	s.mu.Lock()
	for _, k := range t.held {
		if s.holds[k]--; s.holds[k] <= 0 {
			delete(s.holds, k)
		}
	}
	var trash string
	if failed && len(t.added) > 0 {
		if used, err := s.referencedLocked(s.index); err == nil {
			var doomed []string
			for _, k := range t.added {
				if !used[k] && s.holds[k] == 0 {
					doomed = append(doomed, k)
				}
			}
			trash, _ = s.trashLocked(doomed)
		}
	}
	s.mu.Unlock()
	t.held, t.added = nil, nil
	if trash != "" {
		os.RemoveAll(trash)
	}
}

// referencedLocked is the content every image of ix needs, plus the
// content held by operations in flight. It fails when an image's manifest
// cannot be read, since its content would then look unused.
func (s *Store) referencedLocked(ix *index) (map[string]bool, error) {
	used := map[string]bool{}
	for k := range s.holds {
		used[k] = true
	}
	for _, rec := range ix.Images {
		m, err := s.loadMeta(rec)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", shortID(rec.ID), err)
		}
		used[blobKey(rec.Manifest.Digest)] = true
		used[blobKey(m.manifest.Config.Digest)] = true
		for _, l := range m.manifest.Layers {
			used[blobKey(l.Digest)] = true
		}
		for _, d := range m.config.RootFS.DiffIDs {
			used[snapKey(d)] = true
		}
	}
	return used, nil
}

// trashLocked moves the given content out of the store into a trash
// directory under tmp (renames, so it is quick under the lock) and returns
// that directory for the caller to delete after unlocking.
func (s *Store) trashLocked(keys []string) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	trash, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "trash-")
	if err != nil {
		return "", err
	}
	for i, k := range keys {
		var src string
		kind, digest, _ := strings.Cut(k, "/")
		h, err := v1.NewHash(digest)
		if err != nil {
			continue
		}
		switch kind {
		case "blob":
			src = s.blobPath(h)
			s.meta.Delete(digest)
		case "snap":
			src = s.snapshotDir(h)
		}
		_ = os.Rename(src, filepath.Join(trash, fmt.Sprintf("%d", i)))
	}
	return trash, nil
}

// contentOnDisk lists every blob and snapshot in the store, with its size.
func (s *Store) contentOnDisk() (map[string]int64, error) {
	out := map[string]int64{}
	blobs, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	for _, e := range blobs {
		info, err := e.Info()
		if err != nil {
			continue
		}
		out["blob/sha256:"+e.Name()] = info.Size()
	}
	snaps, err := os.ReadDir(filepath.Join(s.dir, "snapshots"))
	if err != nil {
		return nil, err
	}
	for _, e := range snaps {
		d := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		out[snapKey(d)] = s.snapshotSize(d)
	}
	return out, nil
}

// collectLocked removes every blob and snapshot that no image references
// and no operation holds, returning the space it frees and the trash to
// delete after unlocking.
func (s *Store) collectLocked() (reclaimed int64, trash string, err error) {
	used, err := s.referencedLocked(s.index)
	if err != nil {
		return 0, "", fmt.Errorf("collect unused image content: %w", err)
	}
	onDisk, err := s.contentOnDisk()
	if err != nil {
		return 0, "", fmt.Errorf("collect unused image content: %w", err)
	}
	var doomed []string
	for k, size := range onDisk {
		if !used[k] {
			doomed = append(doomed, k)
			reclaimed += max(size, 0)
		}
	}
	trash, err = s.trashLocked(doomed)
	return reclaimed, trash, err
}

// leasedLocked is the set of image IDs that some holder leases.
func (s *Store) leasedLocked() map[string][]string {
	out := map[string][]string{}
	for holder, ids := range s.leases {
		for _, id := range ids {
			out[id] = append(out[id], holder)
		}
	}
	return out
}

// Prune removes untagged images (every image with All) that no container
// leases, then every blob and snapshot no image needs.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	report := PruneReport{ImagesDeleted: []Deletion{}}
	s.mu.Lock()
	leased := s.leasedLocked()
	var doomed []*imageRecord
	for _, rec := range s.index.Images {
		if len(leased[rec.ID]) > 0 {
			continue
		}
		if opts.All || len(rec.Names) == 0 {
			doomed = append(doomed, rec)
		}
	}
	if len(doomed) > 0 {
		err := s.updateLocked(func(ix *index) error {
			for _, rec := range doomed {
				delete(ix.Images, rec.ID)
			}
			return nil
		})
		if err != nil {
			s.mu.Unlock()
			return report, fmt.Errorf("prune images: %w", err)
		}
		for _, rec := range doomed {
			for _, n := range rec.Names {
				report.ImagesDeleted = append(report.ImagesDeleted, Deletion{Untagged: Familiar(n)})
			}
			report.ImagesDeleted = append(report.ImagesDeleted, Deletion{Deleted: rec.ID})
		}
	}
	reclaimed, trash, err := s.collectLocked()
	s.mu.Unlock()
	if trash != "" {
		os.RemoveAll(trash)
	}
	report.SpaceReclaimed = reclaimed
	return report, err
}
