package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxMetadataBlob bounds manifests, configs and indexes read into memory.
const maxMetadataBlob = 16 << 20

func (s *Store) blobPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

func (s *Store) hasBlob(d v1.Hash) bool {
	_, err := os.Lstat(s.blobPath(d))
	return err == nil
}

// blobWriter stages a blob in the store's tmp directory while hashing it;
// commit verifies it and renames it into place.
type blobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	size int64
}

func (s *Store) newBlobWriter() (*blobWriter, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return nil, storageError(fmt.Errorf("stage blob: %w", err))
	}
	return &blobWriter{s: s, f: f, h: sha256.New()}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		return n, storageError(err)
	}
	return n, nil
}

func (w *blobWriter) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// abort drops the staged blob.
func (w *blobWriter) abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
}

// commit checks the staged content against want (zero: any digest) and
// wantSize (<0: any size), makes it durable and moves it into place.
// created says whether the store did not have the blob before.
func (w *blobWriter) commit(want v1.Hash, wantSize int64) (d v1.Hash, size int64, created bool, err error) {
	defer w.abort()
	d = w.digest()
	if wantSize >= 0 && w.size != wantSize {
		return d, w.size, false, classed(errdefs.ErrDataLoss, fmt.Errorf("blob %s: size mismatch: got %d bytes, want %d", want, w.size, wantSize))
	}
	if want.Hex != "" && d != want {
		return d, w.size, false, classed(errdefs.ErrDataLoss, fmt.Errorf("blob %s: digest mismatch: content is %s", want, d))
	}
	if err := w.f.Sync(); err != nil {
		return d, w.size, false, storageError(fmt.Errorf("stage blob %s: %w", d, err))
	}
	if err := w.f.Close(); err != nil {
		return d, w.size, false, storageError(fmt.Errorf("stage blob %s: %w", d, err))
	}
	tmp := w.f.Name()
	w.f = nil
	defer os.Remove(tmp)
	created, err = w.s.placeBlob(tmp, d)
	return d, w.size, created, err
}

// placeBlob renames a verified, synced file into the blob directory,
// unless the store already has the blob.
func (s *Store) placeBlob(tmp string, d v1.Hash) (created bool, err error) {
	target := s.blobPath(d)
	if _, err := os.Lstat(target); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return false, storageError(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return false, fmt.Errorf("store blob %s: %w", d, err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return true, err
	}
	return true, nil
}

// writeBlobBytes stores data as a blob.
func (s *Store) writeBlobBytes(data []byte) (d v1.Hash, created bool, err error) {
	w, err := s.newBlobWriter()
	if err != nil {
		return v1.Hash{}, false, err
	}
	if _, err := w.Write(data); err != nil {
		w.abort()
		return v1.Hash{}, false, err
	}
	d, _, created, err = w.commit(v1.Hash{}, int64(len(data)))
	return d, created, err
}

// openBlob opens a stored blob for reading; the reader fails at its end
// if the content does not match the digest, so a corrupt blob is never
// taken for a good one.
func (s *Store) openBlob(d v1.Hash) (*verifiedReader, error) {
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("blob %s is missing from the image store", d))
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &verifiedReader{f: f, want: d, h: sha256.New(), size: fi.Size()}, nil
}

// readBlob reads a whole (small) blob, verified.
func (s *Store) readBlob(d v1.Hash) ([]byte, error) {
	r, err := s.openBlob(d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.size > maxMetadataBlob {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("blob %s: %d bytes is too large for a manifest or config", d, r.size))
	}
	return io.ReadAll(r)
}

// verifiedReader reads a blob and checks its digest at the end.
type verifiedReader struct {
	f    *os.File
	want v1.Hash
	h    hash.Hash
	size int64
}

func (r *verifiedReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want.Hex {
			return n, classed(errdefs.ErrDataLoss, fmt.Errorf("blob %s in the image store is corrupt (content is sha256:%s); remove the image and pull or load it again", r.want, got))
		}
	}
	return n, err
}

func (r *verifiedReader) Close() error { return r.f.Close() }

// digestOf hashes data.
func digestOf(data []byte) v1.Hash {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// shortID is the 12-hex-digit form docker shows.
func shortID(d string) string {
	if len(d) > 7 && d[:7] == "sha256:" {
		d = d[7:]
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}
