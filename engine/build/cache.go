package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/image"
)

// CacheHolder leases the carrier images of the build cache, so that image
// prune keeps them; Prune lets them go.
const CacheHolder = "berth-build-cache"

// cacheEntry is what a step's cache key leads to.
type cacheEntry struct {
	// Carrier is the image holding the layers after a layer step.
	Carrier string `json:"carrier,omitempty"`
	// Empty says the step changed no file and made no layer.
	Empty bool `json:"empty,omitempty"`
	// Image is the final image of a build (for a build's final key).
	Image string `json:"image,omitempty"`
}

// chainKey hashes a parent key with the parts of a step into its key.
func chainKey(parent string, parts ...string) string {
	h := sha256.New()
	io.WriteString(h, parent)
	for _, p := range parts {
		// Length-prefixed, so that no two lists of parts hash alike.
		fmt.Fprintf(h, "\x00%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (b *Builder) cachePath(key string) string {
	return filepath.Join(b.dir, "cache", key+".json")
}

// cacheGet returns the entry of key when it still holds: its carrier or
// image is still in the store.
func (b *Builder) cacheGet(ctx context.Context, key string) (cacheEntry, bool) {
	var e cacheEntry
	data, err := os.ReadFile(b.cachePath(key))
	if err != nil || json.Unmarshal(data, &e) != nil {
		return e, false
	}
	for _, id := range []string{e.Carrier, e.Image} {
		if id == "" {
			continue
		}
		if _, err := b.images.Resolve(ctx, id); err != nil {
			return e, false
		}
	}
	return e, true
}

// cachePut records key's entry. A lost entry only costs a rebuild, so
// there is no fsync; the rename keeps each entry whole.
func (b *Builder) cachePut(key string, e cacheEntry) error {
	data, _ := json.Marshal(e)
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "cache"), ".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), b.cachePath(key))
}

// PruneReport is what Prune removed.
type PruneReport struct {
	// ImagesDeleted are the cache's carrier images that went.
	ImagesDeleted []string `json:"images_deleted"`
	// Entries is the number of cache entries removed.
	Entries int `json:"entries"`
}

// Prune empties the build cache: its entries, the remembered file hashes,
// and the carrier images no name and no container holds.
func (b *Builder) Prune(ctx context.Context) (PruneReport, error) {
	report := PruneReport{ImagesDeleted: []string{}}
	ids := b.images.Leases()[CacheHolder]
	if err := b.images.Release(ctx, CacheHolder); err != nil {
		return report, err
	}
	for _, id := range ids {
		img, err := b.images.Resolve(ctx, id)
		if err != nil || len(img.RepoTags) > 0 {
			continue
		}
		if _, err := b.images.Remove(ctx, id, image.RemoveOptions{}); err == nil {
			report.ImagesDeleted = append(report.ImagesDeleted, id)
		}
	}
	for _, sub := range []string{"cache", "hashes"} {
		entries, _ := os.ReadDir(filepath.Join(b.dir, sub))
		for _, e := range entries {
			if os.Remove(filepath.Join(b.dir, sub, e.Name())) == nil && sub == "cache" {
				report.Entries++
			}
		}
	}
	return report, nil
}

// hashCache remembers the content hashes of a context's files by path,
// size, mtime, ctime and inode, so that a rebuild hashes only what
// changed (git's index does the same). A file changed within the last
// two seconds is hashed but not remembered, since a second write in the
// same timestamp tick would look unchanged.
type hashCache struct {
	path    string
	mu      sync.Mutex
	entries map[string]hashEntry
	dirty   bool
}

type hashEntry struct {
	Size  int64  `json:"s"`
	Mtime int64  `json:"m"`
	Ctime int64  `json:"c"`
	Ino   uint64 `json:"i"`
	Sum   string `json:"h"`
}

// loadHashCache reads the hashes remembered for the context dir.
func (b *Builder) loadHashCache(contextDir string) *hashCache {
	sum := sha256.Sum256([]byte(contextDir))
	h := &hashCache{path: filepath.Join(b.dir, "hashes", hex.EncodeToString(sum[:16])+".json"), entries: map[string]hashEntry{}}
	if data, err := os.ReadFile(h.path); err == nil {
		_ = json.Unmarshal(data, &h.entries)
	}
	return h
}

// sum returns the sha256 of a regular file, known as key (its path in
// the context), described by st and opened by open when it must be read.
func (h *hashCache) sum(key string, st *unix.Stat_t, open func() (int, error)) (string, error) {
	want := hashEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}
	if h != nil {
		h.mu.Lock()
		e, ok := h.entries[key]
		h.mu.Unlock()
		if ok && e.Size == want.Size && e.Mtime == want.Mtime && e.Ctime == want.Ctime && e.Ino == want.Ino {
			return e.Sum, nil
		}
	}
	fd, err := open()
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), key)
	defer f.Close()
	hasher := sha256.New()
	if _, err := io.Copy(hasher, f); err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	want.Sum = hex.EncodeToString(hasher.Sum(nil))
	if h != nil && time.Since(time.Unix(0, want.Ctime)) > 2*time.Second && time.Since(time.Unix(0, want.Mtime)) > 2*time.Second {
		h.mu.Lock()
		h.entries[key] = want
		h.dirty = true
		h.mu.Unlock()
	}
	return want.Sum, nil
}

// save writes the remembered hashes back when they changed.
func (h *hashCache) save() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return nil
	}
	data, err := json.Marshal(h.entries)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.path), ".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	h.dirty = false
	return os.Rename(tmp.Name(), h.path)
}
