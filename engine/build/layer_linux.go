package build

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout names in a layer tar, as the OCI image spec has them.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// upperEntry is one path of an overlay upper dir.
type upperEntry struct {
	rel      string // slash path relative to the layer root
	st       unix.Stat_t
	whiteout bool // a char 0/0 device: the path was deleted
	opaque   bool // a directory that hides everything below it
	link     string
	xattrs   map[string]string
}

func (e *upperEntry) isDir() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// scanUpper lists an overlay upper dir depth first, each directory's
// entries sorted by name: the order a layer tar has them in, so that the
// same changes always make the same bytes.
func scanUpper(upper string) ([]*upperEntry, error) {
	var out []*upperEntry
	var walk func(dir, relDir string) error
	walk = func(dir, relDir string) error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, name := range names {
			full := filepath.Join(dir, name)
			e := &upperEntry{rel: path.Join(relDir, name)}
			if err := unix.Lstat(full, &e.st); err != nil {
				return &os.PathError{Op: "lstat", Path: full, Err: err}
			}
			switch e.st.Mode & unix.S_IFMT {
			case unix.S_IFCHR:
				e.whiteout = e.st.Rdev == 0
			case unix.S_IFLNK:
				if e.link, err = os.Readlink(full); err != nil {
					return err
				}
			case unix.S_IFSOCK:
				continue // a tar cannot hold a socket; docker drops them too
			}
			if !e.whiteout {
				if e.xattrs, err = readXattrs(full); err != nil {
					return err
				}
				if v, ok := e.xattrs["trusted.overlay.opaque"]; ok && v == "y" && e.isDir() {
					e.opaque = true
				}
				for k := range e.xattrs {
					// overlayfs' own bookkeeping is not the image's.
					if strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay.") {
						delete(e.xattrs, k)
					}
				}
			}
			out = append(out, e)
			if e.isDir() {
				if err := walk(full, e.rel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(upper, ""); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	return out, nil
}

// readXattrs reads a path's extended attributes (not following symlinks).
func readXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	var out map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue // gone, or not readable: leave it
		}
		val := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, val); err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(val[:sz])
	}
	return out, nil
}

// lowerLookup finds rel in a stack of overlay lower dirs (topmost first)
// as overlayfs would: a whiteout or an opaque directory above hides what
// is below.
func lowerLookup(lower []string, relPath string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	parts := strings.Split(relPath, "/")
	for _, dir := range lower {
		// An ancestor in this layer that is a whiteout or not a directory
		// hides the path; an opaque one hides the layers below.
		cur, missing, opaque := dir, false, false
		for _, part := range parts[:len(parts)-1] {
			cur = filepath.Join(cur, part)
			var ast unix.Stat_t
			if err := unix.Lstat(cur, &ast); err != nil {
				missing = true
				break
			}
			if ast.Mode&unix.S_IFMT != unix.S_IFDIR {
				return st, false
			}
			if isOpaque(cur) {
				opaque = true
			}
		}
		if !missing {
			if err := unix.Lstat(filepath.Join(dir, relPath), &st); err == nil {
				if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
					return st, false // a whiteout
				}
				return st, true
			}
		}
		if opaque {
			return st, false
		}
	}
	return st, false
}

func isOpaque(dir string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// withoutStubs drops from entries the mount targets a container's setup
// made (an empty /etc/resolv.conf, /proc, /dev...) where the lower layers
// had nothing, and the directories made or copied up only to hold them:
// they are the engine's, not the image's.
func withoutStubs(entries []*upperEntry, lower []string, stubs []string) []*upperEntry {
	if len(stubs) == 0 {
		return entries
	}
	byPath := map[string]*upperEntry{}
	children := map[string]int{}
	for _, e := range entries {
		byPath[e.rel] = e
		children[path.Dir(e.rel)]++
	}
	skip := map[string]bool{}
	for _, s := range stubs {
		s = rel(s)
		e, ok := byPath[s]
		if !ok || e.whiteout {
			continue
		}
		if _, below := lowerLookup(lower, s); below {
			continue
		}
		empty := e.st.Mode&unix.S_IFMT == unix.S_IFREG && e.st.Size == 0 || e.isDir() && children[s] == 0
		if !empty {
			continue
		}
		skip[s] = true
		// Walk up: a directory left with nothing but skipped entries goes
		// too, if it is new or only copied up unchanged.
		for dir := path.Dir(s); dir != "."; dir = path.Dir(dir) {
			d, ok := byPath[dir]
			if !ok || d.opaque {
				break
			}
			children[dir]--
			if children[dir] > 0 {
				break
			}
			if lst, below := lowerLookup(lower, dir); below &&
				(lst.Mode != d.st.Mode || lst.Uid != d.st.Uid || lst.Gid != d.st.Gid || len(d.xattrs) > 0) {
				break
			}
			skip[dir] = true
		}
	}
	if len(skip) == 0 {
		return entries
	}
	out := entries[:0:0]
	for _, e := range entries {
		if !skip[e.rel] {
			out = append(out, e)
		}
	}
	return out
}

// writeLayer writes entries of upper as a layer tar: whiteouts as .wh.
// files, opaque directories with a .wh..wh..opq marker, hard links as
// links to their first path, owners and modes kept, no user or group
// names, no atime or ctime, and every mtime clamped to clamp when it is
// not nil (a build's epoch), so that the bytes depend only on content.
func writeLayer(w io.Writer, upper string, entries []*upperEntry, clamp *time.Time) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := tar.NewWriter(bw)
	links := map[[2]uint64]string{}
	mtime := func(st *unix.Stat_t) time.Time {
		t := time.Unix(st.Mtim.Sec, 0).UTC()
		if clamp != nil && t.After(*clamp) {
			return *clamp
		}
		return t
	}
	for _, e := range entries {
		if e.whiteout {
			dir, base := path.Split(e.rel)
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + whiteoutPrefix + base, ModTime: mtime(&e.st)}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr := &tar.Header{
			Name: e.rel, Mode: tarMode(e.st.Mode), Uid: int(e.st.Uid), Gid: int(e.st.Gid),
			ModTime: mtime(&e.st),
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		var content string
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.rel+"/"
		case unix.S_IFLNK:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		case unix.S_IFREG:
			id := [2]uint64{e.st.Dev, e.st.Ino}
			if first, ok := links[id]; ok && e.st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if e.st.Nlink > 1 {
				links[id] = e.rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.st.Size
			content = filepath.Join(upper, e.rel)
		case unix.S_IFCHR, unix.S_IFBLK:
			hdr.Typeflag = tar.TypeChar
			if e.st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(e.st.Rdev)), int64(unix.Minor(e.st.Rdev))
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		default:
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("layer entry %s: %w", e.rel, err)
		}
		if content != "" {
			if err := copyFileTo(tw, content, e.st.Size); err != nil {
				return fmt.Errorf("layer entry %s: %w", e.rel, err)
			}
		}
		if e.opaque {
			marker := &tar.Header{Typeflag: tar.TypeReg, Name: e.rel + "/" + opaqueMarker, ModTime: mtime(&e.st)}
			if err := tw.WriteHeader(marker); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// copyFileTo writes exactly size bytes of file p (a file that changed size
// since it was listed would corrupt the tar, so that is an error).
func copyFileTo(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank from %d to %d bytes while it was read", size, n)
	}
	return nil
}

// tarMode is a stat mode as tar has it: permissions and the set-id and
// sticky bits.
func tarMode(m uint32) int64 {
	return int64(m & 0o7777)
}

// Changes lists what a container's writable layer changed, as docker diff
// shows it: every path the upper dir holds, added (A) when the image has
// nothing there, changed (C) otherwise, and deleted (D) for whiteouts;
// sorted by path.
func Changes(l Layer) ([]Change, error) {
	if _, err := os.Stat(l.Upper); errors.Is(err, os.ErrNotExist) {
		return []Change{}, nil // never started: nothing changed
	}
	entries, err := scanUpper(l.Upper)
	if err != nil {
		return nil, err
	}
	entries = withoutStubs(entries, l.Lower, l.Mountpoints)
	out := []Change{}
	for _, e := range entries {
		c := Change{Path: "/" + e.rel}
		switch {
		case e.whiteout:
			c.Kind = Deleted
		default:
			if _, below := lowerLookup(l.Lower, e.rel); below {
				c.Kind = Modified
			} else {
				c.Kind = Added
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// WriteLayer writes a container's writable layer as a layer tar (what
// commit stores), mtimes kept as they are.
func WriteLayer(w io.Writer, l Layer) error {
	if _, err := os.Stat(l.Upper); errors.Is(err, os.ErrNotExist) {
		return tar.NewWriter(w).Close()
	}
	entries, err := scanUpper(l.Upper)
	if err != nil {
		return err
	}
	return writeLayer(w, l.Upper, withoutStubs(entries, l.Lower, l.Mountpoints), nil)
}
