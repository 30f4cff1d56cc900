package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
)

// events serialises an operation's progress events to its sink.
type events struct {
	mu   sync.Mutex
	sink Sink
}

func newEvents(sink Sink) *events { return &events{sink: sink} }

func (e *events) send(ev Event) {
	if e == nil || e.sink == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sink(ev)
}

// Pull fetches an image from its registry over the OCI distribution API,
// names it ref (when ref has a tag) and returns it. Layers already in the
// store are not fetched; layers being fetched by another pull are fetched
// once and shared. Each layer is unpacked as soon as it has arrived.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	ev := newEvents(opts.Sink)
	nref, err := s.nameRef(r)
	if err != nil {
		return Image{}, err
	}
	platform := hostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	ropts := s.remoteOptions(ctx, opts.Auth, &platform)
	tagOrDigest := r.Tag
	if r.Digest != "" {
		tagOrDigest = r.Digest
	}
	ev.send(Event{ID: tagOrDigest, Status: "Pulling from " + r.Repository})

	desc, err := remote.Get(nref, ropts...)
	if err != nil {
		return Image{}, registryError("pull", r.Familiar(), err)
	}
	remoteImg, err := desc.Image()
	if err != nil {
		return Image{}, registryError("pull", r.Familiar(), err)
	}
	rawManifest, err := remoteImg.RawManifest()
	if err != nil {
		return Image{}, registryError("pull", r.Familiar(), err)
	}
	mediaType, err := remoteImg.MediaType()
	if err != nil {
		return Image{}, registryError("pull", r.Familiar(), err)
	}
	rawConfig, err := remoteImg.RawConfigFile()
	if err != nil {
		return Image{}, registryError("pull", r.Familiar(), err)
	}
	meta, err := parseImage(rawManifest, func(v1.Hash) ([]byte, error) { return rawConfig, nil })
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}
	manifestDesc := v1.Descriptor{MediaType: mediaType, Size: int64(len(rawManifest)), Digest: digestOf(rawManifest)}
	id := meta.manifest.Config.Digest.String()

	t := s.begin()
	failed := true
	defer func() { t.end(failed) }()
	keys := []string{blobKey(manifestDesc.Digest), blobKey(meta.manifest.Config.Digest)}
	for i, l := range meta.manifest.Layers {
		keys = append(keys, blobKey(l.Digest), snapKey(meta.config.RootFS.DiffIDs[i]))
	}
	t.hold(keys...)

	fetched := false
	var fetchedMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.MaxConcurrentDownloads)
	for i, l := range meta.manifest.Layers {
		diffID := meta.config.RootFS.DiffIDs[i]
		if !(s.hasBlob(l.Digest) && s.hasSnapshot(diffID)) {
			ev.send(Event{ID: shortID(l.Digest.String()), Status: "Pulling fs layer"})
		}
	}
	for i, l := range meta.manifest.Layers {
		diffID := meta.config.RootFS.DiffIDs[i]
		g.Go(func() error {
			got, err := s.pullLayer(gctx, t, remoteImg, l, diffID, ev)
			if got {
				fetchedMu.Lock()
				fetched = true
				fetchedMu.Unlock()
			}
			if err != nil {
				return fmt.Errorf("pull %s: layer %s: %w", r.Familiar(), shortID(l.Digest.String()), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Image{}, err
	}
	if err := s.commitMetadata(t, rawConfig, rawManifest); err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}

	repoDigest := r.Name() + "@" + desc.Digest.String()
	upToDate := false
	s.mu.Lock()
	err = s.updateLocked(func(ix *index) error {
		rec := ix.Images[id]
		if rec == nil {
			rec = &imageRecord{ID: id, Added: time.Now().UTC()}
			ix.Images[id] = rec
		}
		upToDate = !fetched && rec.Manifest.Digest == manifestDesc.Digest && (r.Tag == "" || ix.names[r.String()] == id)
		rec.Manifest = manifestDesc
		rec.RepoDigests = addUnique(rec.RepoDigests, repoDigest)
		if r.Tag != "" {
			ix.setName(r.String(), id, time.Now().UTC())
		}
		return nil
	})
	s.mu.Unlock()
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}
	failed = false
	ev.send(Event{Status: "Digest: " + desc.Digest.String()})
	if upToDate {
		ev.send(Event{Status: "Status: Image is up to date for " + r.Familiar()})
	} else {
		ev.send(Event{Status: "Status: Downloaded newer image for " + r.Familiar()})
	}
	return s.Resolve(ctx, id)
}

// commitMetadata stores an image's config and manifest blobs.
func (s *Store) commitMetadata(t *txn, rawConfig, rawManifest []byte) error {
	for _, b := range [][]byte{rawConfig, rawManifest} {
		d, created, err := s.writeBlobBytes(b)
		if err != nil {
			return err
		}
		if created {
			t.add(blobKey(d))
		}
	}
	return nil
}

// pullLayer makes sure one layer is in the store, downloaded and unpacked.
// fetched says whether it had to download anything.
func (s *Store) pullLayer(ctx context.Context, t *txn, img v1.Image, l v1.Descriptor, diffID v1.Hash, ev *events) (fetched bool, err error) {
	id := shortID(l.Digest.String())
	if s.hasBlob(l.Digest) && s.hasSnapshot(diffID) {
		ev.send(Event{ID: id, Status: "Already exists"})
		return false, nil
	}
	if !s.hasBlob(l.Digest) {
		fetched = true
		j, _ := s.downloads.join(ctx, l.Digest.String(), func(ctx context.Context, j *job) (bool, error) {
			if s.hasBlob(l.Digest) {
				return false, nil
			}
			return s.download(ctx, img, l.Digest, diffID, l.Size, j)
		})
		err := s.downloads.wait(ctx, j, func() {
			if cur := j.current.Load(); cur > 0 {
				ev.send(Event{ID: id, Status: "Downloading", Current: cur, Total: l.Size})
			}
		})
		if j.addedContent() {
			t.add(blobKey(l.Digest))
		}
		if j.addedSnapshot() {
			t.add(snapKey(diffID))
		}
		if err != nil {
			return true, err
		}
		ev.send(Event{ID: id, Status: "Verifying Checksum"})
		ev.send(Event{ID: id, Status: "Download complete"})
	}
	err = s.ensureSnapshot(ctx, t, l.Digest, diffID, func(j *job) {
		ev.send(Event{ID: id, Status: "Extracting", Current: j.current.Load(), Total: j.total.Load()})
	})
	if err != nil {
		return fetched, err
	}
	ev.send(Event{ID: id, Status: "Pull complete"})
	return fetched, nil
}

// download fetches one layer blob into the store, verified against its
// digest and size. When the layer is not unpacked yet it is unpacked from
// the same stream, so a pull reads and hashes each byte once instead of
// downloading and then reading the blob again.
func (s *Store) download(ctx context.Context, img v1.Image, l, diffID v1.Hash, size int64, j *job) (bool, error) {
	j.total.Store(size)
	layer, err := img.LayerByDigest(l)
	if err != nil {
		return false, classifyRegistry(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return false, classifyRegistry(err)
	}
	defer rc.Close()
	w, err := s.newBlobWriter()
	if err != nil {
		return false, err
	}
	defer w.abort()
	// Stop the copy when every waiter has gone.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	src := &countingReader{r: rc, n: &j.current}
	downloadError := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if j.current.Load() >= size {
			// The registry client checks size and digest at the end.
			return classed(errdefs.ErrDataLoss, fmt.Errorf("digest mismatch from the registry: %w", err))
		}
		return classifyRegistry(err)
	}
	if s.hasSnapshot(diffID) {
		if _, err := io.Copy(w, src); err != nil {
			return false, downloadError(err)
		}
		_, _, created, err := w.commit(l, size)
		if err != nil {
			return false, fmt.Errorf("from the registry: %w", err)
		}
		return created, nil
	}

	stage, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "unpack-")
	if err != nil {
		return false, storageError(err)
	}
	defer os.RemoveAll(stage)
	fsDir := filepath.Join(stage, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return false, storageError(err)
	}
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	go func() {
		// The blob is read to its end even when unpacking stops early, so
		// that a bad layer is told apart from a bad download by its digest.
		_, err := io.Copy(io.MultiWriter(w, &bestEffort{w: pw}), src)
		pw.CloseWithError(err)
		copied <- err
	}()
	meta, unpackErr := unpackStream(ctx, pr, fsDir, diffID)
	if unpackErr == nil {
		_, unpackErr = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(errUnpackDone)
	if err := <-copied; err != nil {
		return false, downloadError(err)
	}
	if unpackErr != nil {
		if w.size != size || w.digest() != l {
			return false, classed(errdefs.ErrDataLoss, fmt.Errorf("digest mismatch from the registry: got %s (%d bytes), want %s (%d bytes)", w.digest(), w.size, l, size))
		}
		return false, fmt.Errorf("unpack layer %s: %w", shortID(l.String()), unpackErr)
	}
	_, _, created, err := w.commit(l, size)
	if err != nil {
		return false, fmt.Errorf("from the registry: %w", err)
	}
	snapCreated, err := s.publishSnapshot(stage, diffID, meta)
	if err != nil {
		return created, err
	}
	j.snapshotCreated = snapCreated
	return created, nil
}

// errUnpackDone closes the pipe to the unpacker once it has stopped.
var errUnpackDone = errors.New("unpack finished")

// bestEffort writes to w until w fails, then swallows writes: the
// download goes on to its end without the unpacker.
type bestEffort struct {
	w    io.Writer
	dead bool
}

func (b *bestEffort) Write(p []byte) (int, error) {
	if !b.dead {
		if _, err := b.w.Write(p); err != nil {
			b.dead = true
		}
	}
	return len(p), nil
}
