package image

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageMeta is an image's parsed manifest and config; content is immutable,
// so it is cached by manifest digest.
type imageMeta struct {
	rawManifest []byte
	manifest    *v1.Manifest
	rawConfig   []byte
	config      *v1.ConfigFile
}

// loadMeta reads (verified) and parses an image's manifest and config.
func (s *Store) loadMeta(rec *imageRecord) (*imageMeta, error) {
	key := rec.Manifest.Digest.String()
	if m, ok := s.meta.Load(key); ok {
		return m.(*imageMeta), nil
	}
	raw, err := s.readBlob(rec.Manifest.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest of image %s: %w", shortID(rec.ID), err)
	}
	m, err := parseImage(raw, func(d v1.Hash) ([]byte, error) { return s.readBlob(d) })
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", shortID(rec.ID), err)
	}
	s.meta.Store(key, m)
	return m, nil
}

// parseImage parses a manifest and the config it names (read with
// readConfig), and checks that they agree.
func parseImage(rawManifest []byte, readConfig func(v1.Hash) ([]byte, error)) (*imageMeta, error) {
	man, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("parse manifest: %w", err))
	}
	if man.SchemaVersion != 2 {
		return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("manifest schema version %d is not supported", man.SchemaVersion))
	}
	rawConfig, err := readConfig(man.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", man.Config.Digest, err)
	}
	if got := digestOf(rawConfig); got != man.Config.Digest {
		return nil, classed(errdefs.ErrDataLoss, fmt.Errorf("config digest mismatch: got %s, want %s", got, man.Config.Digest))
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, classed(errdefs.ErrInvalidArgument, fmt.Errorf("parse config: %w", err))
	}
	if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("manifest has %d layers but config has %d diff IDs", len(man.Layers), len(cfg.RootFS.DiffIDs)))
	}
	for _, l := range man.Layers {
		if l.Digest.Algorithm != "sha256" {
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("layer digest algorithm %s is not supported", l.Digest.Algorithm))
		}
	}
	return &imageMeta{rawManifest: rawManifest, manifest: man, rawConfig: rawConfig, config: cfg}, nil
}

// image builds the resolved Image of rec.
func (s *Store) image(rec *imageRecord) (Image, error) {
	m, err := s.loadMeta(rec)
	if err != nil {
		return Image{}, err
	}
	img := Image{
		ID:          rec.ID,
		RepoTags:    append([]string{}, rec.Names...),
		RepoDigests: append([]string{}, rec.RepoDigests...),
		Manifest:    rec.Manifest,
		Config:      m.config.DeepCopy(),
		Created:     m.config.Created.Time,
		LastTagTime: rec.LastTagTime,
		Layers:      make([]Layer, len(m.manifest.Layers)),
	}
	for i, l := range m.manifest.Layers {
		d := m.config.RootFS.DiffIDs[i]
		size := max(s.snapshotSize(d), 0)
		img.Layers[i] = Layer{Digest: l.Digest.String(), DiffID: d.String(), MediaType: string(l.MediaType), Size: l.Size, UnpackedSize: size}
		img.Size += size
	}
	return img, nil
}

// Resolve finds an image by reference ("busybox", "localhost:5000/app:1",
// "app@sha256:..."), ID or unique ID prefix.
func (s *Store) Resolve(ctx context.Context, ref string) (Image, error) {
	rec, err := lookup(s.snapshotIndex(), ref)
	if err != nil {
		return Image{}, err
	}
	return s.image(rec)
}

// ConfigOf returns a copy of the config of an image (found as Resolve
// finds it) from the parsed metadata the store keeps, with none of
// Resolve's per-layer reads: what a container start needs.
func (s *Store) ConfigOf(ctx context.Context, ref string) (*v1.ConfigFile, error) {
	_, config, err := s.Lookup(ctx, ref)
	return config, err
}

// Lookup is ConfigOf that also returns the image's ID: what a container
// create needs.
func (s *Store) Lookup(ctx context.Context, ref string) (string, *v1.ConfigFile, error) {
	rec, err := lookup(s.snapshotIndex(), ref)
	if err != nil {
		return "", nil, err
	}
	m, err := s.loadMeta(rec)
	if err != nil {
		return "", nil, err
	}
	return rec.ID, m.config.DeepCopy(), nil
}

// List lists the store's images, newest first.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]Summary, error) {
	s.mu.Lock()
	ix := s.index
	leased := s.leasedLocked()
	s.mu.Unlock()
	out := []Summary{}
	for _, rec := range ix.Images {
		if opts.Dangling != nil && *opts.Dangling != (len(rec.Names) == 0) {
			continue
		}
		if len(opts.References) > 0 && !matchesAny(rec.Names, opts.References) {
			continue
		}
		if holders := leased[rec.ID]; opts.HideHeldOnlyBy != "" && len(rec.Names) == 0 &&
			len(holders) > 0 && allEqual(holders, opts.HideHeldOnlyBy) {
			continue
		}
		img, err := s.image(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, Summary{
			ID: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
			Created: img.Created, Size: img.Size, Containers: len(leased[rec.ID]),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func allEqual(list []string, v string) bool {
	for _, s := range list {
		if s != v {
			return false
		}
	}
	return true
}

// Inspect describes an image as `docker image inspect` does.
func (s *Store) Inspect(ctx context.Context, ref string) (Details, error) {
	img, err := s.Resolve(ctx, ref)
	if err != nil {
		return Details{}, err
	}
	cfg := img.Config
	//lint:ignore SA1019 docker's inspect output still has DockerVersion
	dockerVersion := cfg.DockerVersion
	d := Details{
		ID: img.ID, RepoTags: familiarAll(img.RepoTags), RepoDigests: familiarAll(img.RepoDigests),
		Created: cfg.Created.Time.UTC().Format(time.RFC3339Nano), DockerVersion: dockerVersion,
		Author: cfg.Author, Config: cfg.Config, Architecture: cfg.Architecture, Variant: cfg.Variant,
		Os: cfg.OS, Size: img.Size, Descriptor: img.Manifest,
		RootFS: DetailsRoot{Type: "layers", Layers: []string{}},
	}
	if n := len(cfg.History); n > 0 {
		d.Comment = cfg.History[n-1].Comment
	}
	for _, l := range img.Layers {
		d.RootFS.Layers = append(d.RootFS.Layers, l.DiffID)
	}
	if !img.LastTagTime.IsZero() {
		d.Metadata.LastTagTime = img.LastTagTime.UTC().Format(time.RFC3339Nano)
	}
	return d, nil
}

// familiarAll shortens references as docker shows them.
func familiarAll(refs []string) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = Familiar(r)
	}
	return out
}

// History lists the steps that made an image, newest first: one per layer
// and one per metadata-only step, each with its size and instruction.
func (s *Store) History(ctx context.Context, ref string) ([]HistoryEntry, error) {
	img, err := s.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	layer := 0
	hist := img.Config.History
	if len(hist) == 0 {
		// No history recorded: one row per layer, as docker shows.
		for range img.Layers {
			hist = append(hist, v1.History{})
		}
	}
	for _, h := range hist {
		e := HistoryEntry{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && layer < len(img.Layers) {
			e.Size = img.Layers[layer].UnpackedSize
			layer++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID
		out[0].Tags = img.RepoTags
	}
	return out, nil
}
