package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Whiteouts as layer tarballs carry them (the AUFS form the OCI image spec
// adopted): ".wh.NAME" deletes NAME from the layers below, and
// ".wh..wh..opq" in a directory hides everything below it.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// overlayfs forms of whiteouts: a 0/0 character device for a deletion and
// this xattr on an opaque directory.
const (
	overlayOpaqueXattr = "trusted.overlay.opaque"
	overlayXattrPrefix = "trusted.overlay."
)

// invalidLayer is the error of a layer entry berth refuses.
func invalidLayer(entry, why string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("layer entry %q: %s", entry, why))
}

// cleanEntryName turns a tar entry's name into a clean relative path inside
// the layer ("." for the root), refusing absolute paths and paths that
// climb out with "..".
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", invalidLayer(name, "empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", invalidLayer(name, "NUL in name")
	}
	if path.IsAbs(name) {
		return "", invalidLayer(name, "absolute path")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", invalidLayer(name, "path leaves the layer")
	}
	return c, nil
}

// cleanLinkTarget is the layer path a hard link points at. Tar writers
// may root these at "/", which means the layer's root.
func cleanLinkTarget(entry, target string) (string, error) {
	t := strings.TrimLeft(target, "/")
	if t == "" || strings.IndexByte(t, 0) >= 0 {
		return "", invalidLayer(entry, fmt.Sprintf("bad hard link target %q", target))
	}
	c := path.Clean(t)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", invalidLayer(entry, fmt.Sprintf("hard link target %q leaves the layer", target))
	}
	return c, nil
}

// symlinkEscapes reports whether a relative symlink at entry climbs above
// the root. Absolute targets are resolved against the container's root at
// run time, so they cannot escape it.
func symlinkEscapes(entry, target string) bool {
	if path.IsAbs(target) {
		return false
	}
	j := path.Join(path.Dir(entry), target)
	return j == ".." || strings.HasPrefix(j, "../")
}

// decompress sniffs a layer's compression (gzip, zstd or none) and returns
// the tar stream.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("layer: bad gzip stream: %v", err))
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("layer: bad zstd stream: %v", err))
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return nil, errdefs.ErrNotImplemented.WithMessage("layer: bzip2 compression is not supported")
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X'}):
		return nil, errdefs.ErrNotImplemented.WithMessage("layer: xz compression is not supported")
	}
	return io.NopCloser(br), nil
}

// compression names a blob's compression from its first bytes.
func compression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// xattrs returns the extended attributes a tar header carries.
func xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
		}
	}
	return out
}
