package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// snapshotMeta is ROOT/image/snapshots/HEX/meta.json.
type snapshotMeta struct {
	DiffID  string `json:"diffID"`
	Size    int64  `json:"size"`    // bytes of file content
	TarSize int64  `json:"tarSize"` // bytes of the uncompressed tar
}

func (s *Store) snapshotDir(diffID v1.Hash) string {
	return filepath.Join(s.dir, "snapshots", diffID.Hex)
}

// SnapshotPath is the directory holding the unpacked layer diffID, whether
// or not it exists.
func (s *Store) SnapshotPath(diffID string) (string, error) {
	h, err := v1.NewHash(diffID)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad diff ID %q: %v", diffID, err))
	}
	return filepath.Join(s.snapshotDir(h), "fs"), nil
}

func (s *Store) hasSnapshot(diffID v1.Hash) bool {
	_, err := os.Lstat(filepath.Join(s.snapshotDir(diffID), "meta.json"))
	return err == nil
}

func (s *Store) readSnapshotMeta(diffID v1.Hash) (snapshotMeta, bool) {
	var m snapshotMeta
	b, err := os.ReadFile(filepath.Join(s.snapshotDir(diffID), "meta.json"))
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	return m, true
}

// snapshotSize is the content size of an unpacked layer, or -1.
func (s *Store) snapshotSize(diffID v1.Hash) int64 {
	m, ok := s.readSnapshotMeta(diffID)
	if !ok {
		return -1
	}
	return m.Size
}

// ensureSnapshot makes sure the layer diffID is unpacked from its blob,
// unpacking it at most once however many callers ask at the same time.
// The caller holds snapKey(diffID). tick, when not nil, is called with the
// unpack's job every progress interval.
func (s *Store) ensureSnapshot(ctx context.Context, t *txn, blob, diffID v1.Hash, tick func(*job)) error {
	if s.hasSnapshot(diffID) {
		return nil
	}
	j, _ := s.unpacks.join(ctx, diffID.String(), func(ctx context.Context, j *job) (bool, error) {
		if s.hasSnapshot(diffID) {
			return false, nil
		}
		return s.unpackBlob(ctx, blob, diffID, j)
	})
	var ticker func()
	if tick != nil {
		ticker = func() { tick(j) }
	}
	err := s.unpacks.wait(ctx, j, ticker)
	if j.addedContent() {
		t.add(snapKey(diffID))
	}
	return err
}

// unpackBlob unpacks a layer blob into a new snapshot: into a staging
// directory first, checked against its digest and diff ID, synced, then
// renamed into place.
func (s *Store) unpackBlob(ctx context.Context, blob, diffID v1.Hash, j *job) (bool, error) {
	raw, err := s.openBlob(blob)
	if err != nil {
		return false, err
	}
	defer raw.Close()
	j.total.Store(raw.size)
	stage, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "unpack-")
	if err != nil {
		return false, storageError(err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(stage)
		}
	}()
	fsDir := filepath.Join(stage, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return false, storageError(err)
	}
	counted := &countingReader{r: &ctxReader{ctx: ctx, r: raw}, n: &j.current}
	meta, err := unpackStream(ctx, counted, fsDir, diffID)
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", shortID(blob.String()), err)
	}
	// The blob's own digest is checked when it has been read to its end.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", shortID(blob.String()), err)
	}
	created, err := s.publishSnapshot(stage, diffID, meta)
	if err != nil {
		return false, err
	}
	ok = true
	return created, nil
}

// unpackStream decompresses r, unpacks it into dir and checks that the
// tar's digest is diffID (zero: any).
func unpackStream(ctx context.Context, r io.Reader, dir string, diffID v1.Hash) (snapshotMeta, error) {
	tarStream, err := decompress(r)
	if err != nil {
		return snapshotMeta{}, err
	}
	defer tarStream.Close()
	h := sha256.New()
	counter := &countingWriter{w: h}
	tee := io.TeeReader(tarStream, counter)
	size, err := unpackTar(ctx, tee, dir)
	if err != nil {
		return snapshotMeta{}, err
	}
	// Read the end-of-archive padding too: the diff ID covers it.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return snapshotMeta{}, badTar(err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if diffID.Hex != "" && got != diffID {
		return snapshotMeta{}, classed(errdefs.ErrDataLoss, fmt.Errorf("content does not match its diff ID %s (it is %s)", diffID, got))
	}
	return snapshotMeta{DiffID: got.String(), Size: size, TarSize: counter.n}, nil
}

// publishSnapshot writes the snapshot's metadata, syncs the unpacked files
// and renames the staging directory to its place; created is false when
// someone else published the snapshot first.
func (s *Store) publishSnapshot(stage string, diffID v1.Hash, meta snapshotMeta) (created bool, err error) {
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(stage, "meta.json"), b, 0o600); err != nil {
		return false, storageError(err)
	}
	if err := syncFS(stage); err != nil {
		return false, err
	}
	target := s.snapshotDir(diffID)
	if s.hasSnapshot(diffID) {
		return false, os.RemoveAll(stage)
	}
	os.RemoveAll(target) // a crash between mkdir and rename cannot leave one, but be sure
	if err := os.Rename(stage, target); err != nil {
		return false, fmt.Errorf("publish snapshot %s: %w", shortID(diffID.String()), err)
	}
	return true, syncDir(filepath.Dir(target))
}

// Snapshots returns the unpacked layer directories of an image, topmost
// first, as overlayfs takes them in lowerdir; layers missing from disk are
// unpacked again from their blobs.
func (s *Store) Snapshots(ctx context.Context, ref string) ([]string, error) {
	rec, err := lookup(s.snapshotIndex(), ref)
	if err != nil {
		return nil, err
	}
	m, err := s.loadMeta(rec)
	if err != nil {
		return nil, err
	}
	t := s.begin()
	defer t.end(false)
	keys := []string{}
	for _, d := range m.config.RootFS.DiffIDs {
		keys = append(keys, snapKey(d))
	}
	t.hold(keys...)
	dirs := make([]string, len(m.config.RootFS.DiffIDs))
	for i, d := range m.config.RootFS.DiffIDs {
		if err := s.ensureSnapshot(ctx, t, m.manifest.Layers[i].Digest, d, nil); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		dirs[len(dirs)-1-i] = filepath.Join(s.snapshotDir(d), "fs")
	}
	return dirs, nil
}

// countingReader counts bytes read into n.
type countingReader struct {
	r io.Reader
	n interface{ Add(int64) int64 }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingWriter counts bytes written.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
