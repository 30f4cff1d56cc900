package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// savedImage is one image to save with the names it is saved under.
type savedImage struct {
	rec   *imageRecord
	meta  *imageMeta
	names []string // normalised
}

// Save writes images to w as a tarball: a docker-archive (manifest.json
// with uncompressed layers, plus the OCI index docker 25 and later write)
// or an OCI-layout archive with the blobs as stored. An image given by
// name is saved under that name; one given by ID, under none.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string, opts SaveOptions) error {
	format := opts.Format
	if format == "" {
		format = DockerArchive
	}
	if format != DockerArchive && format != OCIArchive {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("save: unknown format %q (docker-archive or oci-archive)", format))
	}
	if len(refs) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("save: no image given")
	}
	t := s.begin()
	defer t.end(false)
	var images []*savedImage
	byID := map[string]*savedImage{}
	s.mu.Lock()
	for _, ref := range refs {
		rec, err := lookup(s.index, ref)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		t.holdLocked(blobKey(rec.Manifest.Digest))
		si := byID[rec.ID]
		if si == nil {
			si = &savedImage{rec: rec}
			byID[rec.ID] = si
			images = append(images, si)
		}
		if r, err := ParseReference(ref); err == nil && r.Digest == "" && s.index.names[r.String()] == rec.ID {
			si.names = addUnique(si.names, r.String())
		}
	}
	s.mu.Unlock()
	for _, si := range images {
		m, err := s.loadMeta(si.rec)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		si.meta = m
		keys := []string{blobKey(m.manifest.Config.Digest)}
		for i, l := range m.manifest.Layers {
			keys = append(keys, blobKey(l.Digest), snapKey(m.config.RootFS.DiffIDs[i]))
		}
		t.hold(keys...)
	}
	aw := &archiveWriter{tw: tar.NewWriter(w), written: map[string]bool{}}
	var err error
	if format == OCIArchive {
		err = s.saveOCI(ctx, aw, images)
	} else {
		err = s.saveDocker(ctx, aw, images)
	}
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return aw.tw.Close()
}

// archiveWriter writes a reproducible tarball: fixed times, owners and modes.
type archiveWriter struct {
	tw      *tar.Writer
	written map[string]bool
}

var epoch = time.Unix(0, 0).UTC()

func (a *archiveWriter) dir(name string) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	return a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
}

func (a *archiveWriter) file(name string, size int64, r io.Reader) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	if err := a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(a.tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d bytes of %d", name, n, size)
	}
	return nil
}

func (a *archiveWriter) bytes(name string, b []byte) error {
	return a.file(name, int64(len(b)), bytes.NewReader(b))
}

// archiveBlob copies a stored blob into the archive, verified as it is read.
func (s *Store) archiveBlob(ctx context.Context, a *archiveWriter, d v1.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := blobRel(d)
	if a.written[name] {
		return nil
	}
	rc, err := s.openBlob(d)
	if err != nil {
		return err
	}
	defer rc.Close()
	return a.file(name, rc.size, rc)
}

func (a *archiveWriter) layout(index v1.IndexManifest) error {
	if err := a.bytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return a.bytes("index.json", b)
}

// indexEntries are the descriptors of an image in an archive's index.json:
// one per name, annotated as containerd does, or one without a name.
func indexEntries(desc v1.Descriptor, names []string) []v1.Descriptor {
	if len(names) == 0 {
		return []v1.Descriptor{desc}
	}
	var out []v1.Descriptor
	for _, n := range names {
		d := desc
		d.Annotations = ociNameAnnotations(n)
		out = append(out, d)
	}
	return out
}

// saveOCI writes an OCI image layout with the blobs as stored.
func (s *Store) saveOCI(ctx context.Context, a *archiveWriter, images []*savedImage) error {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := a.dir(dir); err != nil {
			return err
		}
	}
	for _, si := range images {
		m := si.meta
		for _, l := range m.manifest.Layers {
			if err := s.archiveBlob(ctx, a, l.Digest); err != nil {
				return err
			}
		}
		for _, d := range []v1.Hash{m.manifest.Config.Digest, si.rec.Manifest.Digest} {
			if err := s.archiveBlob(ctx, a, d); err != nil {
				return err
			}
		}
		index.Manifests = append(index.Manifests, indexEntries(si.rec.Manifest, si.names)...)
	}
	return a.layout(index)
}

// saveDocker writes a docker-archive as docker 25 and later do: blobs in
// an OCI layout, layers uncompressed (named by diff ID), an OCI manifest
// per image over them, and manifest.json for older readers.
func (s *Store) saveDocker(ctx context.Context, a *archiveWriter, images []*savedImage) error {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var manifests []dockerManifestEntry
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := a.dir(dir); err != nil {
			return err
		}
	}
	for _, si := range images {
		m := si.meta
		man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: m.manifest.Config}
		man.Config.MediaType = types.OCIConfigJSON
		entry := dockerManifestEntry{Config: blobRel(m.manifest.Config.Digest), RepoTags: []string{}}
		for i, l := range m.manifest.Layers {
			diffID := m.config.RootFS.DiffIDs[i]
			size, err := s.uncompressedLayer(ctx, a, l.Digest, diffID)
			if err != nil {
				return fmt.Errorf("layer %s: %w", shortID(l.Digest.String()), err)
			}
			man.Layers = append(man.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: diffID})
			entry.Layers = append(entry.Layers, blobRel(diffID))
		}
		if err := s.archiveBlob(ctx, a, m.manifest.Config.Digest); err != nil {
			return err
		}
		raw, err := json.Marshal(man)
		if err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: digestOf(raw)}
		if err := a.bytes(blobRel(desc.Digest), raw); err != nil {
			return err
		}
		index.Manifests = append(index.Manifests, indexEntries(desc, si.names)...)
		for _, n := range si.names {
			entry.RepoTags = append(entry.RepoTags, Familiar(n))
		}
		sort.Strings(entry.RepoTags)
		manifests = append(manifests, entry)
	}
	if err := a.layout(index); err != nil {
		return err
	}
	b, err := json.Marshal(manifests)
	if err != nil {
		return err
	}
	return a.bytes("manifest.json", b)
}

// uncompressedLayer writes a layer's tar, uncompressed, under its diff ID
// and checks it against the diff ID as it goes. It returns the tar's size.
func (s *Store) uncompressedLayer(ctx context.Context, a *archiveWriter, blob, diffID v1.Hash) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	size := int64(-1)
	if m, ok := s.readSnapshotMeta(diffID); ok && m.TarSize > 0 {
		size = m.TarSize
	}
	if size < 0 {
		n, err := s.measureLayer(blob)
		if err != nil {
			return 0, err
		}
		size = n
	}
	if a.written[blobRel(diffID)] {
		return size, nil
	}
	rc, err := s.openBlob(blob)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tarStream, err := decompress(rc)
	if err != nil {
		return 0, err
	}
	defer tarStream.Close()
	h := sha256.New()
	if err := a.file(blobRel(diffID), size, io.TeeReader(tarStream, h)); err != nil {
		return 0, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return 0, classed(errdefs.ErrDataLoss, fmt.Errorf("layer does not match its diff ID %s (it is sha256:%s)", diffID, got))
	}
	return size, nil
}

// measureLayer is the uncompressed size of a layer blob.
func (s *Store) measureLayer(blob v1.Hash) (int64, error) {
	rc, err := s.openBlob(blob)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tarStream, err := decompress(rc)
	if err != nil {
		return 0, err
	}
	defer tarStream.Close()
	return io.Copy(io.Discard, tarStream)
}
