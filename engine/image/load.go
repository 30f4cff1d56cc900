package image

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archive is a loaded tarball staged in the store's tmp directory: its
// regular files, and its links resolved within the archive.
type archive struct {
	dir   string
	links map[string]string // archive path -> archive path it links to
}

// stageArchive unpacks the regular files of a tarball into dir. Nothing in
// the tarball can name a path outside dir: names are cleaned and refused
// when they climb out, and links are kept as a map, never made.
func stageArchive(ctx context.Context, r io.Reader, dir string) (*archive, error) {
	a := &archive{dir: dir, links: map[string]string{}}
	br := bufio.NewReaderSize(&ctxReader{ctx: ctx, r: r}, 256<<10)
	tr := tar.NewReader(br)
	buf := make([]byte, 256<<10)
	sawEntry := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, archiveError(err)
		}
		sawEntry = true
		rel, err := cleanEntryName(strings.TrimPrefix(hdr.Name, "/"))
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if err := a.writeFile(rel, tr, buf); err != nil {
				return nil, err
			}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
				target = path.Join(path.Dir(rel), target)
			}
			t, err := cleanEntryName(strings.TrimPrefix(target, "/"))
			if err != nil {
				return nil, fmt.Errorf("archive: link %s: %w", rel, err)
			}
			a.links[rel] = t
		}
	}
	if !sawEntry {
		return nil, errdefs.ErrInvalidArgument.WithMessage("archive: empty input: not a tarball")
	}
	// Read the padding tar writers add after the end marker, so a client
	// streaming the archive has sent it all before we answer.
	_, _ = io.Copy(io.Discard, io.LimitReader(br, 1<<20))
	return a, nil
}

func archiveError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive is truncated: %w", err))
	}
	return classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive is not a valid tarball: %w", err))
}

// writeFile stages one regular file, synced so it can later be renamed
// into the blob store as it is.
func (a *archive) writeFile(rel string, r io.Reader, buf []byte) error {
	full := filepath.Join(a.dir, rel)
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("archive: %s is both a file and a directory", rel))
		}
		return storageError(err)
	}
	os.Remove(full) // a later entry of the same name wins, as with tar
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storageError(fmt.Errorf("archive: stage %s: %w", rel, err))
	}
	defer f.Close()
	if _, err := io.CopyBuffer(writerOnly{f}, r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return archiveError(err)
		}
		return storageError(fmt.Errorf("archive: stage %s: %w", rel, err))
	}
	if err := f.Sync(); err != nil {
		return storageError(fmt.Errorf("archive: stage %s: %w", rel, err))
	}
	return nil
}

// resolve follows the archive's links from rel to a staged file.
func (a *archive) resolve(rel string) (string, error) {
	p, err := cleanEntryName(strings.TrimPrefix(rel, "/"))
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	for range 16 {
		t, ok := a.links[p]
		if !ok {
			break
		}
		p = t
	}
	full := filepath.Join(a.dir, p)
	fi, err := os.Lstat(full)
	if err != nil || !fi.Mode().IsRegular() {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("archive: %s is missing", rel))
	}
	return full, nil
}

func (a *archive) read(rel string) ([]byte, error) {
	p, err := a.resolve(rel)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxMetadataBlob {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("archive: %s is too large (%d bytes)", rel, fi.Size()))
	}
	return os.ReadFile(p)
}

func (a *archive) has(rel string) bool {
	_, err := a.resolve(rel)
	return err == nil
}

func blobRel(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// stagedImage is one image found in an archive, checked and ready to commit.
type stagedImage struct {
	names     []string
	meta      *imageMeta
	mediaType types.MediaType
	layers    []string // staged files of the layer blobs
}

// imagesInArchive finds the images of a staged archive: through index.json
// for an OCI layout (and docker 25+ archives), else manifest.json.
func (s *Store) imagesInArchive(a *archive, platform v1.Platform) ([]stagedImage, error) {
	switch {
	case a.has("index.json"):
		return ociImages(a, platform)
	case a.has("manifest.json"):
		return dockerImages(a)
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage("archive has neither manifest.json (docker-archive) nor index.json (OCI layout)")
}

// readVerified reads a blob of the archive and checks its digest.
func (a *archive) readVerified(d v1.Hash) ([]byte, error) {
	b, err := a.read(blobRel(d))
	if err != nil {
		return nil, err
	}
	if got := digestOf(b); got != d {
		return nil, classed(errdefs.ErrDataLoss, fmt.Errorf("archive: blob %s does not match its digest (it is %s)", d, got))
	}
	return b, nil
}

// ociImages reads an OCI layout's index.
func ociImages(a *archive, platform v1.Platform) ([]stagedImage, error) {
	raw, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive: index.json: %w", err))
	}
	var out []stagedImage
	for _, d := range idx.Manifests {
		names := namesFromAnnotations(d.Annotations)
		desc, err := pickManifest(a, d, platform, 0)
		if err != nil {
			return nil, err
		}
		if desc == nil {
			continue
		}
		raw, err := a.readVerified(desc.Digest)
		if err != nil {
			return nil, err
		}
		m, err := parseImage(raw, a.readVerified)
		if err != nil {
			return nil, fmt.Errorf("archive: manifest %s: %w", desc.Digest, err)
		}
		img := stagedImage{names: names, meta: m, mediaType: desc.MediaType}
		if img.mediaType == "" {
			img.mediaType = m.manifest.MediaType
		}
		if img.mediaType == "" {
			img.mediaType = types.OCIManifestSchema1
		}
		for _, l := range m.manifest.Layers {
			p, err := a.resolve(blobRel(l.Digest))
			if err != nil {
				return nil, fmt.Errorf("archive: layer %s: %w", l.Digest, err)
			}
			img.layers = append(img.layers, p)
		}
		out = append(out, img)
	}
	return out, nil
}

// pickManifest resolves a descriptor of an OCI index to an image manifest,
// choosing platform in nested indexes; nil for what is not an image.
func pickManifest(a *archive, d v1.Descriptor, platform v1.Platform, depth int) (*v1.Descriptor, error) {
	if d.MediaType.IsImage() {
		return &d, nil
	}
	if !d.MediaType.IsIndex() || depth > 4 {
		return nil, nil
	}
	raw, err := a.readVerified(d.Digest)
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive: index %s: %w", d.Digest, err))
	}
	var only *v1.Descriptor
	for _, c := range idx.Manifests {
		if !c.MediaType.IsImage() && !c.MediaType.IsIndex() {
			continue
		}
		if c.Platform != nil && c.Platform.Satisfies(platform) {
			return pickManifest(a, c, platform, depth+1)
		}
		if c.Platform == nil && only == nil {
			only = &c
		}
	}
	if only != nil {
		return pickManifest(a, *only, platform, depth+1)
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("archive: no image for platform %s in index %s", platform.String(), d.Digest))
}

// namesFromAnnotations is the image name an OCI index gives a manifest:
// containerd's full name, else a ref.name that is a reference (one that is
// only a tag names no repository, so it names nothing).
func namesFromAnnotations(a map[string]string) []string {
	if n := a[annotationImageName]; n != "" {
		if full, err := NormalizeReference(n); err == nil {
			return []string{full}
		}
	}
	if n := a[annotationRefName]; strings.ContainsAny(n, ":/") {
		if full, err := NormalizeReference(n); err == nil {
			return []string{full}
		}
	}
	return nil
}

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// dockerImages reads a docker-archive's manifest.json. Its layers are
// tarballs (plain or compressed) named by path; each must match the diff
// ID its config gives. berth writes an OCI manifest for each image.
func dockerImages(a *archive) ([]stagedImage, error) {
	raw, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive: manifest.json: %w", err))
	}
	var out []stagedImage
	for _, e := range entries {
		rawConfig, err := a.read(e.Config)
		if err != nil {
			return nil, err
		}
		cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawConfig)))
		if err != nil {
			return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("archive: config %s: %w", e.Config, err))
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("archive: image %s lists %d layers, its config %d", e.Config, len(e.Layers), len(cfg.RootFS.DiffIDs)))
		}
		man := v1.Manifest{
			SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
			Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawConfig)), Digest: digestOf(rawConfig)},
		}
		img := stagedImage{mediaType: types.OCIManifestSchema1}
		for i, lp := range e.Layers {
			p, err := a.resolve(lp)
			if err != nil {
				return nil, err
			}
			desc, diffID, err := describeLayerFile(p)
			if err != nil {
				return nil, fmt.Errorf("archive: layer %s: %w", lp, err)
			}
			if diffID != cfg.RootFS.DiffIDs[i] {
				return nil, classed(errdefs.ErrDataLoss, fmt.Errorf("archive: layer %s does not match its diff ID %s (it is %s)", lp, cfg.RootFS.DiffIDs[i], diffID))
			}
			man.Layers = append(man.Layers, desc)
			img.layers = append(img.layers, p)
		}
		rawManifest, err := json.Marshal(man)
		if err != nil {
			return nil, err
		}
		img.meta = &imageMeta{rawManifest: rawManifest, manifest: &man, rawConfig: rawConfig, config: cfg}
		for _, t := range e.RepoTags {
			full, err := NormalizeReference(t)
			if err != nil {
				return nil, fmt.Errorf("archive: %w", err)
			}
			img.names = append(img.names, full)
		}
		out = append(out, img)
	}
	return out, nil
}

// describeLayerFile hashes a layer tarball: its digest as it is, its
// compression, and the digest of its uncompressed tar.
func describeLayerFile(p string) (v1.Descriptor, v1.Hash, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	defer f.Close()
	raw := sha256.New()
	counter := &countingWriter{w: raw}
	br := bufio.NewReaderSize(io.TeeReader(f, counter), 64<<10)
	head, _ := br.Peek(4)
	kind := compression(head)
	un, err := decompress(br)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	defer un.Close()
	diff := sha256.New()
	if _, err := io.Copy(diff, un); err != nil {
		return v1.Descriptor{}, v1.Hash{}, classed(errdefs.ErrInvalidArgument, fmt.Errorf("corrupt layer: %w", err))
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	mt := types.OCIUncompressedLayer
	switch kind {
	case "gzip":
		mt = types.OCILayer
	case "zstd":
		mt = types.OCILayerZStd
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(raw.Sum(nil))}
	return v1.Descriptor{MediaType: mt, Size: counter.n, Digest: d}, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))}, nil
}

// hashFile is the digest and size of a file.
func hashFile(p string) (v1.Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// Load brings in the images of a docker-archive tarball (as `docker save`
// writes it) or an OCI-layout tarball (as skopeo's oci-archive writes it).
// Every blob is checked against its digest and every layer against its
// diff ID, and unpacked, before any image is recorded; if anything is
// wrong the store is left as it was.
func (s *Store) Load(ctx context.Context, r io.Reader, opts LoadOptions) ([]LoadedImage, error) {
	stage, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "load-")
	if err != nil {
		return nil, storageError(err)
	}
	defer os.RemoveAll(stage)
	a, err := stageArchive(ctx, r, stage)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	platform := hostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	images, err := s.imagesInArchive(a, platform)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if len(images) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("load: the archive holds no image")
	}
	ev := newEvents(opts.Sink)
	t := s.begin()
	failed := true
	defer func() { t.end(failed) }()
	for _, img := range images {
		m := img.meta
		for i, l := range m.manifest.Layers {
			t.hold(blobKey(l.Digest), snapKey(m.config.RootFS.DiffIDs[i]))
		}
	}
	for _, img := range images {
		if err := s.loadLayers(ctx, t, img, ev); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	var out []LoadedImage
	for _, img := range images {
		got, err := s.commitParsed(t, img.meta, img.mediaType, img.names, "", "")
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if len(img.names) == 0 {
			out = append(out, LoadedImage{ID: got.ID})
		}
		for _, n := range img.names {
			out = append(out, LoadedImage{Reference: n, ID: got.ID})
		}
	}
	failed = false
	return out, nil
}

// loadLayers moves an image's staged layer blobs into the store (checked
// against their digests) and unpacks them.
func (s *Store) loadLayers(ctx context.Context, t *txn, img stagedImage, ev *events) error {
	m := img.meta
	for i, l := range m.manifest.Layers {
		if s.hasBlob(l.Digest) {
			continue
		}
		d, size, err := hashFile(img.layers[i])
		if errors.Is(err, fs.ErrNotExist) && s.hasBlob(l.Digest) {
			continue // moved in already for another image of the archive
		}
		if err != nil {
			return err
		}
		if d != l.Digest || size != l.Size {
			return classed(errdefs.ErrDataLoss, fmt.Errorf("layer %s does not match its digest (it is %s, %d bytes)", l.Digest, d, size))
		}
		created, err := s.placeBlob(img.layers[i], d)
		if err != nil {
			return err
		}
		if created {
			t.add(blobKey(d))
		}
	}
	for i, l := range m.manifest.Layers {
		diffID := m.config.RootFS.DiffIDs[i]
		id := shortID(diffID.String())
		if s.hasSnapshot(diffID) {
			ev.send(Event{ID: id, Status: "Already exists"})
			continue
		}
		err := s.ensureSnapshot(ctx, t, l.Digest, diffID, func(j *job) {
			ev.send(Event{ID: id, Status: "Loading layer", Current: j.current.Load(), Total: j.total.Load()})
		})
		if err != nil {
			return fmt.Errorf("layer %s: %w", shortID(l.Digest.String()), err)
		}
		ev.send(Event{ID: id, Status: "Loading layer", Current: l.Size, Total: l.Size})
	}
	return nil
}
