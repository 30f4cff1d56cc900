// Package tarcopy is the tar side of `cp`: a file or tree into a tar, and
// a tar into a directory, as docker cp moves them.
package tarcopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// Add adds the file or tree at p to tw under the name name, as `cp` copies
// it: contents, modes, owners, times and symlinks (not followed).
func Add(tw *tar.Writer, p, name string, info os.FileInfo) error {
	link := ""
	if info.Mode()&os.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if info.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname = "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	switch {
	case info.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		return err
	case info.IsDir():
		return AddChildren(tw, p, name)
	}
	return nil
}

// AddChildren writes what directory p holds, and below, named under name
// (at the top of the tar when name is empty).
func AddChildren(tw *tar.Writer, p, name string) error {
	entries, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		child := path.Join(p, e.Name())
		ci, err := os.Lstat(child)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing, by a running container
		}
		if err != nil {
			return err
		}
		if err := Add(tw, child, path.Join(name, e.Name()), ci); err != nil {
			return err
		}
	}
	return nil
}

// Extract writes the entries of tr under dir, the top entry renamed to
// rename when set. Names that climb out of dir are refused; devices, fifos
// and hard links are skipped.
func Extract(tr *tar.Reader, dir, rename string) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("bad tar: " + err.Error())
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("tar entry %q leaves the destination", hdr.Name))
		}
		if rename != "" {
			if top, rest, _ := strings.Cut(name, "/"); top != "" {
				name = path.Join(rename, rest)
			}
		}
		target := filepath.Join(dir, name)
		mode := os.FileMode(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			// A directory that is there keeps its mode and owner: a tar
			// naming the way to a file (sync's /app/src/) must not turn
			// /tmp's 1777 into 755.
			if info, err := os.Lstat(target); err == nil && info.IsDir() {
				continue
			}
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
			_ = os.Chmod(target, mode)
		case tar.TypeReg:
			_ = os.Remove(target)
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		default:
			continue // devices, fifos, hard links: not copied
		}
		_ = os.Lchown(target, hdr.Uid, hdr.Gid)
	}
}
