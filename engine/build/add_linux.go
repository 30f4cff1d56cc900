package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// extract unpacks an ADD source into the destination when it is a tar
// archive (plain, gzip, bzip2 or zstd), as docker does; done is false for
// any other file, which is then copied as it is.
func (c *copier) extract(it copyItem) (done bool, err error) {
	fd, err := it.tree.root.open(it.src.name, unix.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), it.src.name)
	defer f.Close()
	r, err := decompressArchive(f)
	if errors.Is(err, errNotArchive) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer r.Close()
	dfd, err := c.dst.mkdirAll(c.dest, c.dirOwner())
	if err != nil {
		return true, err
	}
	closeFD(dfd)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, fmt.Errorf("read archive: %w", err)
		}
		if err := c.extractEntry(hdr, tr); err != nil {
			return true, fmt.Errorf("archive entry %s: %w", hdr.Name, err)
		}
	}
}

// decompressArchive returns the tar stream of f, or errNotArchive.
func decompressArchive(f io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(6)
	var r io.Reader = br
	closer := func() error { return nil }
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errNotArchive
		}
		r, closer = zr, zr.Close
	case bytes.HasPrefix(head, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, errNotArchive
		}
		r, closer = zr, func() error { zr.Close(); return nil }
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errdefs.ErrNotImplemented.WithMessage("ADD: xz archives are not supported; use gzip, bzip2 or zstd")
	}
	tb := bufio.NewReaderSize(r, 64<<10)
	block, err := tb.Peek(512)
	if err != nil || !bytes.Equal(block[257:262], []byte("ustar")) {
		closer()
		return nil, errNotArchive
	}
	return struct {
		io.Reader
		io.Closer
	}{tb, closerFunc(closer)}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// extractEntry writes one archive entry below the destination; its name
// cannot leave the destination, nor can a link target.
func (c *copier) extractEntry(hdr *tar.Header, r io.Reader) error {
	name := rel(hdr.Name)
	if name == "." {
		return nil
	}
	base := path.Base(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return nil // a layer's whiteout means nothing in an ADD
	}
	target := path.Join(c.dest, name)
	pfd, err := c.dst.mkdirAll(path.Dir(target), owner{})
	if err != nil {
		return err
	}
	defer closeFD(pfd)
	own := owner{hdr.Uid, hdr.Gid}
	if c.own != nil {
		own = *c.own
	}
	st := unix.Stat_t{Mode: uint32(hdr.Mode) & 0o7777, Mtim: unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	switch hdr.Typeflag {
	case tar.TypeDir:
		st.Mode |= unix.S_IFDIR
		fd, err := c.makeDir(pfd, base, &st, own)
		if err == nil {
			closeFD(fd)
		}
		return err
	case tar.TypeReg:
		st.Mode |= unix.S_IFREG
		isDir, err := clearEntry(pfd, base)
		if err != nil {
			return err
		}
		if isDir {
			return fmt.Errorf("cannot replace directory %s with a file", target)
		}
		wfd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		w := os.NewFile(uintptr(wfd), base)
		_, err = io.Copy(w, r)
		if err == nil {
			err = c.setMetaFD(w, &st, own)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		st.Mode |= unix.S_IFLNK
		return c.writeSpecial(pfd, base, &st, hdr.Linkname, own)
	case tar.TypeLink:
		tfd, tbase, err := c.dst.openParent(path.Join(c.dest, rel(hdr.Linkname)))
		if err != nil {
			return err
		}
		defer closeFD(tfd)
		if _, err := clearEntry(pfd, base); err != nil {
			return err
		}
		return unix.Linkat(tfd, tbase, pfd, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		st.Mode |= kind
		st.Rdev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		return c.writeSpecial(pfd, base, &st, "", own)
	}
	return nil // PAX, GNU long names... are read by the tar reader itself
}

// download fetches an ADD URL into a scratch directory and checks its
// --checksum; the file keeps the server's Last-Modified time, as docker
// keeps it.
func (j *job) download(ctx context.Context, rawURL, checksum string) (copyItem, func(), error) {
	if urlBase(rawURL) == "" {
		return copyItem{}, nil, errdefs.ErrInvalidArgument.WithMessage("cannot determine a file name from the URL; give the destination a file name")
	}
	dir, err := os.MkdirTemp(filepath.Join(j.b.dir, "tmp"), "download-")
	if err != nil {
		return copyItem{}, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	fail := func(err error) (copyItem, func(), error) {
		cleanup()
		return copyItem{}, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail(errdefs.ErrInvalidArgument.WithMessage(err.Error()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("download: %v", err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("download: %s", resp.Status)))
	}
	p := filepath.Join(dir, "download")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(fmt.Errorf("download: %w", err))
	}
	if checksum != "" {
		algo, want, _ := strings.Cut(checksum, ":")
		if algo != "sha256" {
			return fail(errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("--checksum=%s: only sha256 is supported", checksum)))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fail(errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("checksum mismatch: got sha256:%s, want %s", got, checksum)))
		}
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		_ = os.Chtimes(p, time.Time{}, lm)
	}
	root, err := openFSRoot(dir, false)
	if err != nil {
		return fail(err)
	}
	tree := &srcTree{root: root, label: rawURL, context: true}
	src, err := tree.lookup("download")
	if err != nil {
		root.close()
		return fail(err)
	}
	return copyItem{tree: tree, src: src, url: rawURL}, func() { root.close(); cleanup() }, nil
}

// urlBase is the file name a URL gives a download, "" when it has none.
func urlBase(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	b := path.Base(u.Path)
	if b == "/" || b == "." || b == "" {
		return ""
	}
	return b
}

// bindMount plans a read-only RUN --mount=type=bind: from the context (its
// content is part of the step's key), or from a stage or an image.
func (j *job) bindMount(ctx context.Context, sr *stageRun, m *instructions.Mount, target string, releases *[]func()) (mountPlan, string, error) {
	source := m.Source
	if source == "" {
		source = "/"
	}
	if m.From == "" {
		s, err := j.tree.lookup(source)
		if err != nil {
			return mountPlan{}, "", fmt.Errorf("RUN --mount source %s: %w", source, err)
		}
		h := sha256.New()
		if err := j.tree.digest(h, s); err != nil {
			return mountPlan{}, "", err
		}
		key := fmt.Sprintf("bind:%s:context:%x", target, h.Sum(nil))
		return mountPlan{resolve: func(context.Context) (runMount, error) {
			fd, err := j.tree.root.open(s.name, unix.O_PATH, 0)
			if err != nil {
				return runMount{}, err
			}
			defer closeFD(fd)
			host, err := realPath(fd)
			return runMount{target: target, source: host, readOnly: true}, err
		}}, key, nil
	}
	label, carrier, skey, err := j.fromSource(ctx, sr, m.From)
	if err != nil {
		return mountPlan{}, "", fmt.Errorf("RUN --mount from=%s: %w", m.From, err)
	}
	key := fmt.Sprintf("bind:%s:%s:%s", target, skey, source)
	return mountPlan{resolve: func(ctx context.Context) (runMount, error) {
		tree, release, err := j.b.openState(ctx, carrier, label)
		if err != nil {
			return runMount{}, err
		}
		*releases = append(*releases, release)
		fd, err := tree.root.open(source, unix.O_PATH, 0)
		if err != nil {
			return runMount{}, fmt.Errorf("RUN --mount from=%s source %s: %w", m.From, source, err)
		}
		defer closeFD(fd)
		host, err := realPath(fd)
		return runMount{target: target, source: host, readOnly: true}, err
	}}, key, nil
}
