package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/spreaddirs"
)

// Store is an image store on disk. One Store serves a state root at a time
// (an flock on ROOT/image/lock says so); it is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	lock *os.File

	// mu guards index, holds and leases, and orders every change of the
	// index with the garbage collection of blobs and snapshots.
	mu     sync.Mutex
	index  *index
	holds  map[string]int      // content held by operations in flight (holdKey) -> count
	leases map[string][]string // holder -> image IDs

	meta      sync.Map // manifest digest -> *imageMeta (content is immutable)
	downloads flight
	unpacks   flight
}

// Open opens (creating it if needed) the image store of the state root.
func Open(root string, opts Options) (*Store, error) {
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = 3
	}
	dir := filepath.Join(root, "image")
	s := &Store{dir: dir, opts: opts, holds: map[string]int{}, leases: map[string][]string{}}
	for _, d := range []string{"blobs/sha256", "snapshots", "leases", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", storageError(err))
		}
	}
	// Snapshots and unpacks in progress are trees of files made and
	// removed whole (see spreaddirs).
	_ = spreaddirs.Mark(filepath.Join(dir, "snapshots"))
	_ = spreaddirs.Mark(filepath.Join(dir, "tmp"))
	lock, err := lockStore(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	s.lock = lock
	fail := func(err error) (*Store, error) {
		lock.Close()
		return nil, err
	}
	// Whatever a crashed operation staged is garbage now.
	if err := emptyDir(filepath.Join(dir, "tmp")); err != nil {
		return fail(fmt.Errorf("open image store: clean staging area: %w", err))
	}
	if err := writeFileAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		return fail(fmt.Errorf("open image store: %w", err))
	}
	ix, err := readIndex(filepath.Join(dir, "images.json"))
	if err != nil {
		return fail(fmt.Errorf("open image store: %w", err))
	}
	s.index = ix
	if err := s.readLeases(); err != nil {
		return fail(fmt.Errorf("open image store: %w", err))
	}
	// index.json is derived; rewrite it in case a crash left it behind.
	if err := s.writeOCIIndex(ix); err != nil {
		return fail(fmt.Errorf("open image store: %w", err))
	}
	// A crash between adding content and recording the image leaves blobs
	// and snapshots nothing references: nobody can be using them now.
	// (An image whose manifest cannot be read stops this; prune says why.)
	if _, trash, err := s.collectLocked(); err == nil && trash != "" {
		os.RemoveAll(trash)
	}
	return s, nil
}

// Close releases the store's lock. Operations still running fail.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir is the directory of the store (ROOT/image).
func (s *Store) Dir() string { return s.dir }

// index is berth's reference index: every image by ID, with its names.
// It is replaced, never modified in place, so a reader holding one sees a
// consistent view.
type index struct {
	Version int                     `json:"version"`
	Images  map[string]*imageRecord `json:"images"`
	names   map[string]string       // normalised reference -> image ID
}

// imageRecord is one image of the index.
type imageRecord struct {
	ID          string        `json:"id"`
	Manifest    v1.Descriptor `json:"manifest"`
	Names       []string      `json:"names,omitempty"`
	RepoDigests []string      `json:"repoDigests,omitempty"`
	Added       time.Time     `json:"added"`
	LastTagTime time.Time     `json:"lastTagTime,omitzero"`
}

func readIndex(path string) (*index, error) {
	ix := &index{Version: 1, Images: map[string]*imageRecord{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ix.reindex()
		return ix, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if ix.Images == nil {
		ix.Images = map[string]*imageRecord{}
	}
	ix.reindex()
	return ix, nil
}

func (ix *index) reindex() {
	ix.names = map[string]string{}
	for id, rec := range ix.Images {
		for _, n := range rec.Names {
			ix.names[n] = id
		}
	}
}

// clone copies the index deeply enough to change it.
func (ix *index) clone() *index {
	c := &index{Version: ix.Version, Images: make(map[string]*imageRecord, len(ix.Images))}
	for id, rec := range ix.Images {
		r := *rec
		r.Names = slices.Clone(rec.Names)
		r.RepoDigests = slices.Clone(rec.RepoDigests)
		c.Images[id] = &r
	}
	c.reindex()
	return c
}

// setName points name at image id, taking it from any other image.
func (ix *index) setName(name, id string, now time.Time) {
	if old, ok := ix.names[name]; ok {
		if old == id {
			return
		}
		rec := ix.Images[old]
		rec.Names = slices.DeleteFunc(rec.Names, func(n string) bool { return n == name })
	}
	rec := ix.Images[id]
	rec.Names = append(rec.Names, name)
	sort.Strings(rec.Names)
	rec.LastTagTime = now
	ix.names[name] = id
}

// removeName drops name from the index.
func (ix *index) removeName(name string) {
	id, ok := ix.names[name]
	if !ok {
		return
	}
	rec := ix.Images[id]
	rec.Names = slices.DeleteFunc(rec.Names, func(n string) bool { return n == name })
	delete(ix.names, name)
}

func addUnique(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	list = append(list, s)
	sort.Strings(list)
	return list
}

// updateLocked applies change to a copy of the index, writes it and makes
// it current; on any error the index stays as it was. s.mu must be held.
func (s *Store) updateLocked(change func(ix *index) error) error {
	next := s.index.clone()
	if err := change(next); err != nil {
		return err
	}
	next.reindex()
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, "images.json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	s.index = next
	// The OCI index only mirrors images.json for other tools; failing to
	// write it loses nothing (Open rewrites it).
	_ = s.writeOCIIndex(next)
	return nil
}

// writeOCIIndex writes index.json, the OCI layout's index, from ix: one
// descriptor per name (annotated as containerd does) and one per untagged image.
func (s *Store) writeOCIIndex(ix *index) error {
	out := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []v1.Descriptor{}}
	ids := make([]string, 0, len(ix.Images))
	for id := range ix.Images {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		rec := ix.Images[id]
		if len(rec.Names) == 0 {
			out.Manifests = append(out.Manifests, rec.Manifest)
			continue
		}
		for _, n := range rec.Names {
			d := rec.Manifest
			d.Annotations = ociNameAnnotations(n)
			out.Manifests = append(out.Manifests, d)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "index.json"), b, 0o600)
}

// Annotations of names in OCI indexes, as containerd and docker 25+ write them.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

func ociNameAnnotations(full string) map[string]string {
	a := map[string]string{annotationImageName: full}
	if r, err := ParseReference(full); err == nil && r.Tag != "" {
		a[annotationRefName] = r.Tag
	}
	return a
}

// snapshotIndex returns the current index; callers must not change it.
func (s *Store) snapshotIndex() *index {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// lookup resolves a reference, a name@digest, an image ID or a unique
// prefix of one against ix.
func lookup(ix *index, ref string) (*imageRecord, error) {
	notFound := errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such image: %s", ref))
	if ref == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no image given")
	}
	if rec, ok := ix.Images[ref]; ok {
		return rec, nil
	}
	if r, err := ParseReference(ref); err == nil {
		if r.Digest == "" {
			if id, ok := ix.names[r.String()]; ok {
				return ix.Images[id], nil
			}
		} else {
			for _, rec := range ix.Images {
				if slices.Contains(rec.RepoDigests, r.String()) {
					return rec, nil
				}
			}
			for _, rec := range ix.Images {
				if rec.Manifest.Digest.String() == r.Digest {
					return rec, nil
				}
			}
		}
	}
	if !looksLikeID(ref) {
		return nil, notFound
	}
	prefix := ref
	if len(prefix) < len("sha256:") || prefix[:7] != "sha256:" {
		prefix = "sha256:" + prefix
	}
	var found *imageRecord
	for id, rec := range ix.Images {
		if len(id) >= len(prefix) && id[:len(prefix)] == prefix {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image ID prefix %s is ambiguous", ref))
			}
			found = rec
		}
	}
	if found == nil {
		return nil, notFound
	}
	return found, nil
}
