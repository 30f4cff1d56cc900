package image

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Push sends the image named ref to its registry. Layers the registry
// already has are not sent.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return PushResult{}, err
	}
	if r.Digest != "" {
		return PushResult{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("push %s: push a tag, not a digest", ref))
	}
	ix := s.snapshotIndex()
	id, ok := ix.names[r.String()]
	if !ok {
		return PushResult{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("an image does not exist locally with the tag: %s", r.FamiliarName()))
	}
	rec := ix.Images[id]
	m, err := s.loadMeta(rec)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", r.Familiar(), err)
	}
	nref, err := s.nameRef(r)
	if err != nil {
		return PushResult{}, err
	}
	t := s.begin()
	defer t.end(false)
	keys := []string{blobKey(rec.Manifest.Digest), blobKey(m.manifest.Config.Digest)}
	for _, l := range m.manifest.Layers {
		keys = append(keys, blobKey(l.Digest))
	}
	t.hold(keys...)

	ev := newEvents(opts.Sink)
	ev.send(Event{Status: "The push refers to repository [" + r.Name() + "]"})
	img := &pushImage{s: s, meta: m, mediaType: rec.Manifest.MediaType, ev: ev, opened: map[v1.Hash]*atomic.Bool{}}
	for i := len(m.manifest.Layers) - 1; i >= 0; i-- {
		l := m.manifest.Layers[i]
		img.opened[l.Digest] = &atomic.Bool{}
		ev.send(Event{ID: shortID(l.Digest.String()), Status: "Preparing"})
	}
	v1img, err := partial.CompressedToImage(img)
	if err != nil {
		return PushResult{}, err
	}
	if err := remote.Write(nref, v1img, s.remoteOptions(ctx, opts.Auth, nil)...); err != nil {
		return PushResult{}, registryError("push", r.Familiar(), err)
	}
	for i := len(m.manifest.Layers) - 1; i >= 0; i-- {
		l := m.manifest.Layers[i]
		if !img.opened[l.Digest].Load() {
			ev.send(Event{ID: shortID(l.Digest.String()), Status: "Layer already exists"})
		}
	}
	res := PushResult{Reference: r.String(), Digest: rec.Manifest.Digest.String(), Size: int64(len(m.rawManifest))}
	ev.send(Event{Status: fmt.Sprintf("%s: digest: %s size: %d", r.Tag, res.Digest, res.Size)})
	s.mu.Lock()
	err = s.updateLocked(func(ix *index) error {
		if rec := ix.Images[id]; rec != nil {
			rec.RepoDigests = addUnique(rec.RepoDigests, r.Name()+"@"+res.Digest)
		}
		return nil
	})
	s.mu.Unlock()
	return res, err
}

// pushImage is a stored image as the registry client reads it: blobs come
// from the store, verified, and count their bytes for progress.
type pushImage struct {
	s         *Store
	meta      *imageMeta
	mediaType types.MediaType
	ev        *events
	opened    map[v1.Hash]*atomic.Bool // written before the push starts, read-only after
}

func (p *pushImage) RawConfigFile() ([]byte, error) { return p.meta.rawConfig, nil }
func (p *pushImage) RawManifest() ([]byte, error)   { return p.meta.rawManifest, nil }
func (p *pushImage) MediaType() (types.MediaType, error) {
	switch {
	case p.mediaType != "":
		return p.mediaType, nil
	case p.meta.manifest.MediaType != "":
		return p.meta.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (p *pushImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == p.meta.manifest.Config.Digest {
		return &pushLayer{p: p, desc: p.meta.manifest.Config}, nil
	}
	for _, l := range p.meta.manifest.Layers {
		if l.Digest == h {
			return &pushLayer{p: p, desc: l, progress: true}, nil
		}
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("blob %s is not part of the image", h))
}

type pushLayer struct {
	p        *pushImage
	desc     v1.Descriptor
	progress bool
}

func (l *pushLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *pushLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *pushLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.p.s.openBlob(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	if !l.progress {
		return rc, nil
	}
	if b := l.p.opened[l.desc.Digest]; b != nil {
		b.Store(true)
	}
	return &pushReader{rc: rc, l: l}, nil
}

// pushReader reports a layer's upload progress, at most every progress
// interval, and "Pushed" at its end.
type pushReader struct {
	rc   io.ReadCloser
	l    *pushLayer
	n    int64
	last time.Time
}

func (r *pushReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	r.n += int64(n)
	id := shortID(r.l.desc.Digest.String())
	if err == io.EOF {
		r.l.p.ev.send(Event{ID: id, Status: "Pushed"})
	} else if time.Since(r.last) >= progressInterval {
		r.last = time.Now()
		r.l.p.ev.send(Event{ID: id, Status: "Pushing", Current: r.n, Total: r.l.desc.Size})
	}
	return n, err
}

func (r *pushReader) Close() error { return r.rc.Close() }
