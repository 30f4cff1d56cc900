package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// addLayer stores an uncompressed tar stream as a gzip layer blob and
// unpacks it. The compression is reproducible (no name, no time in the
// gzip header, a fixed level), so the same tar gives the same digest.
func (s *Store) addLayer(ctx context.Context, t *txn, tarStream io.Reader) (v1.Descriptor, v1.Hash, error) {
	w, err := s.newBlobWriter()
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		w.abort()
		return v1.Descriptor{}, v1.Hash{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(gz, io.TeeReader(&ctxReader{ctx: ctx, r: tarStream}, h)); err != nil {
		w.abort()
		return v1.Descriptor{}, v1.Hash{}, storageError(fmt.Errorf("store layer: %w", err))
	}
	if err := gz.Close(); err != nil {
		w.abort()
		return v1.Descriptor{}, v1.Hash{}, storageError(fmt.Errorf("store layer: %w", err))
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	d := w.digest()
	t.hold(blobKey(d), snapKey(diffID))
	_, size, created, err := w.commit(d, -1)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, fmt.Errorf("store layer: %w", err)
	}
	if created {
		t.add(blobKey(d))
	}
	if err := s.ensureSnapshot(ctx, t, d, diffID, nil); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	return v1.Descriptor{MediaType: types.OCILayer, Size: size, Digest: d}, diffID, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Import makes a one-layer image from a root file system tarball (plain,
// gzip or zstd), as `docker import` does.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (Image, error) {
	var names []string
	if opts.Reference != "" {
		ref, err := ParseReference(opts.Reference)
		if err != nil {
			return Image{}, err
		}
		if ref.Digest != "" {
			return Image{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("import: %s: name the image with a tag, not a digest", opts.Reference))
		}
		names = append(names, ref.String())
	}
	tarStream, err := decompress(r)
	if err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	defer tarStream.Close()
	t := s.begin()
	failed := true
	defer func() { t.end(failed) }()
	layer, diffID, err := s.addLayer(ctx, t, tarStream)
	if err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	platform := hostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	now := v1.Time{Time: time.Now().UTC()}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg := &v1.ConfigFile{
		Architecture: platform.Architecture, OS: platform.OS, Variant: platform.Variant,
		Created: now, Config: opts.Config,
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History: []v1.History{{Created: now, Comment: comment}},
	}
	img, err := s.commitImage(t, cfg, []v1.Descriptor{layer}, names, "")
	if err != nil {
		return Image{}, fmt.Errorf("import: %w", err)
	}
	failed = false
	return img, nil
}

// Create makes an image from a base (or none), new layers, a run
// configuration and history, written atomically and then named. The same
// options give the same image ID and manifest digest.
func (s *Store) Create(ctx context.Context, opts CreateOptions) (Image, error) {
	var names []string
	for _, tag := range opts.Tags {
		ref, err := ParseReference(tag)
		if err != nil {
			return Image{}, err
		}
		if ref.Digest != "" {
			return Image{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("create image: %s: a tag cannot be a digest", tag))
		}
		names = append(names, ref.String())
	}
	if opts.Lease != "" && !holderName.MatchString(opts.Lease) {
		return Image{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad lease holder %q", opts.Lease))
	}
	t := s.begin()
	failed := true
	defer func() { t.end(failed) }()

	cfg := &v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}
	var layers []v1.Descriptor
	if opts.Base != "" && opts.Base != "scratch" {
		s.mu.Lock()
		rec, err := lookup(s.index, opts.Base)
		if err == nil {
			t.holdLocked(blobKey(rec.Manifest.Digest))
		}
		s.mu.Unlock()
		if err != nil {
			return Image{}, fmt.Errorf("create image: base %w", err)
		}
		base, err := s.loadMeta(rec)
		if err != nil {
			return Image{}, fmt.Errorf("create image: base %w", err)
		}
		for i, l := range base.manifest.Layers {
			t.hold(blobKey(l.Digest), snapKey(base.config.RootFS.DiffIDs[i]))
		}
		layers = append(layers, base.manifest.Layers...)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, base.config.RootFS.DiffIDs...)
		cfg.History = append(cfg.History, base.config.History...)
		cfg.Architecture, cfg.OS, cfg.Variant, cfg.Author = base.config.Architecture, base.config.OS, base.config.Variant, base.config.Author
	}
	for i, nl := range opts.Layers {
		desc, diffID, err := s.addLayer(ctx, t, nl.Tar)
		if err != nil {
			return Image{}, fmt.Errorf("create image: layer %d: %w", i+1, err)
		}
		layers = append(layers, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	}
	host := hostPlatform()
	cfg.Architecture = firstOf(opts.Architecture, cfg.Architecture, host.Architecture)
	cfg.OS = firstOf(opts.OS, cfg.OS, host.OS)
	cfg.Variant = firstOf(opts.Variant, cfg.Variant)
	cfg.Author = firstOf(opts.Author, cfg.Author)
	cfg.Config = opts.Config
	cfg.History = append(cfg.History, opts.History...)
	if !opts.Created.IsZero() {
		cfg.Created = v1.Time{Time: opts.Created.UTC()}
	}
	img, err := s.commitImage(t, cfg, layers, names, opts.Lease)
	if err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	failed = false
	return img, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ociLayerType maps docker's layer media types to the OCI ones, for
// manifests berth writes itself.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}

// commitImage writes an image's config and OCI manifest, then records it
// in the index with its names and, when lease is set, leases it, all at
// once. Its layers must already be in the store, held by t.
func (s *Store) commitImage(t *txn, cfg *v1.ConfigFile, layers []v1.Descriptor, names []string, lease string) (Image, error) {
	rawConfig, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	man := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawConfig)), Digest: digestOf(rawConfig)},
	}
	for _, l := range layers {
		l.MediaType = ociLayerType(l.MediaType)
		l.URLs, l.Annotations, l.Platform = nil, nil, nil
		man.Layers = append(man.Layers, l)
	}
	rawManifest, err := json.Marshal(man)
	if err != nil {
		return Image{}, err
	}
	return s.commitParsed(t, &imageMeta{rawManifest: rawManifest, manifest: &man, rawConfig: rawConfig, config: cfg}, types.OCIManifestSchema1, names, "", lease)
}

// commitParsed stores an image's config and manifest blobs and records it
// in the index: named names, with repoDigest, leased to lease.
func (s *Store) commitParsed(t *txn, m *imageMeta, mediaType types.MediaType, names []string, repoDigest, lease string) (Image, error) {
	id := m.manifest.Config.Digest.String()
	desc := v1.Descriptor{MediaType: mediaType, Size: int64(len(m.rawManifest)), Digest: digestOf(m.rawManifest)}
	t.hold(blobKey(desc.Digest), blobKey(m.manifest.Config.Digest))
	if err := s.commitMetadata(t, m.rawConfig, m.rawManifest); err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	var rec *imageRecord
	err := s.updateLocked(func(ix *index) error {
		rec = ix.Images[id]
		if rec == nil {
			rec = &imageRecord{ID: id, Added: time.Now().UTC()}
			ix.Images[id] = rec
		}
		rec.Manifest = desc
		rec.RepoDigests = addUnique(rec.RepoDigests, repoDigest)
		for _, n := range names {
			ix.setName(n, id, time.Now().UTC())
		}
		return nil
	})
	if err == nil && lease != "" {
		err = s.leaseLocked(lease, id)
	}
	s.mu.Unlock()
	if err != nil {
		return Image{}, err
	}
	return s.image(rec)
}
