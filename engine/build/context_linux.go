package build

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sys/unix"
)

// srcTree is where COPY and ADD take files from: the build context, seen
// through .dockerignore and never followed outside its directory, or the
// root filesystem of a stage or an image.
type srcTree struct {
	root  *fsRoot
	label string // "the build context", "stage builder", "image alpine"
	// ignore is the context's .dockerignore; nil ignores nothing.
	ignore *patternmatcher.PatternMatcher
	// context is set for the build context: owners become root's, and
	// file hashes are remembered in hashes.
	context bool
	hashes  *hashCache
}

// openContext opens the build context dir with its .dockerignore: the
// Dockerfile's own (Dockerfile.dockerignore beside it) when there is one,
// as BuildKit reads it, else the context's.
func openContext(dir, dockerfile string, hashes *hashCache) (*srcTree, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("build context %s: %v", dir, err))
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("build context %s is not a directory", dir))
	}
	root, err := openFSRoot(real, false)
	if err != nil {
		return nil, err
	}
	t := &srcTree{root: root, label: "the build context", context: true, hashes: hashes}
	candidates := []string{filepath.Join(real, ".dockerignore")}
	if dockerfile != "" {
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			root.close()
			return nil, err
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err == nil && len(patterns) > 0 {
			t.ignore, err = patternmatcher.New(patterns)
		}
		if err != nil {
			root.close()
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %v", p, err))
		}
		break
	}
	return t, nil
}

func (t *srcTree) close() { t.root.close() }

// ignored reports whether the context's .dockerignore excludes rel (or a
// directory above it).
func (t *srcTree) ignored(relPath string) bool {
	if t.ignore == nil || relPath == "." {
		return false
	}
	m, err := t.ignore.MatchesOrParentMatches(relPath)
	return err == nil && m
}

// source is one file or directory a COPY or ADD takes.
type source struct {
	name string // as the instruction named it, after wildcards: "src/a.go"
	real string // its path in the tree after symlinks, for .dockerignore
	st   unix.Stat_t
}

func (s *source) isDir() bool { return s.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// resolve finds what a COPY source names: one path (a symlink at the top
// is followed, as docker does), or every match of a wildcard pattern.
func (t *srcTree) resolve(pattern string) ([]source, error) {
	p := rel(pattern)
	if !hasWildcard(p) {
		s, err := t.lookup(p)
		if err != nil {
			return nil, err
		}
		return []source{s}, nil
	}
	candidates := []string{"."}
	for _, part := range strings.Split(p, "/") {
		var next []string
		for _, c := range candidates {
			if !hasWildcard(part) {
				next = append(next, path.Join(c, part))
				continue
			}
			names, err := t.list(c)
			if err != nil {
				continue // not a directory, or gone: no match below it
			}
			for _, n := range names {
				if ok, _ := path.Match(part, n); ok {
					next = append(next, path.Join(c, n))
				}
			}
		}
		candidates = next
	}
	sort.Strings(candidates)
	var out []source
	for _, c := range candidates {
		s, err := t.lookup(c)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%q matches no file in %s", pattern, t.label))
	}
	return out, nil
}

// lookup resolves one path.
func (t *srcTree) lookup(p string) (source, error) {
	fd, err := t.root.open(p, unix.O_PATH, 0)
	if err != nil {
		switch {
		case escapes(err):
			return source{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q leads outside %s through a symlink", p, t.label))
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			return source{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%q: not found in %s", p, t.label))
		}
		return source{}, fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(fd)
	s := source{name: p, real: p}
	if err := unix.Fstat(fd, &s.st); err != nil {
		return source{}, err
	}
	if real, err := realPath(fd); err == nil {
		if r, err := filepath.Rel(t.root.dir, real); err == nil && !strings.HasPrefix(r, "..") {
			s.real = filepath.ToSlash(r)
		}
	}
	if t.ignored(s.real) {
		return source{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%q: not found in %s (excluded by .dockerignore)", p, t.label))
	}
	return s, nil
}

// list names the entries of directory p that .dockerignore keeps.
func (t *srcTree) list(p string) ([]string, error) {
	fd, err := t.root.open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	real := p
	if r, err := realPath(fd); err == nil {
		if rr, err := filepath.Rel(t.root.dir, r); err == nil {
			real = filepath.ToSlash(rr)
		}
	}
	out := names[:0]
	for _, n := range names {
		if !t.ignored(path.Join(real, n)) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// walkEntry is one entry below a source directory.
type walkEntry struct {
	rel  string // relative to the source directory
	dfd  int    // the directory holding it, open while fn runs
	name string // its name in dfd
	st   unix.Stat_t
	link string
}

// walk calls fn for every entry below the source directory s, depth
// first in name order, parents before children; entries .dockerignore
// excludes are left out (a directory it excludes is entered only if a
// later "!" pattern may bring something back, and then shown only if it
// holds something kept).
func (t *srcTree) walk(s source, fn func(e *walkEntry) error) error {
	fd, err := t.root.open(s.name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	var pending []*walkEntry // excluded directories waiting for a kept child
	var walkDir func(dfd int, relDir string, info patternmatcher.MatchInfo) error
	walkDir = func(dfd int, relDir string, info patternmatcher.MatchInfo) error {
		f := os.NewFile(uintptr(dfd), relDir)
		names, err := f.Readdirnames(-1)
		if err != nil {
			f.Close()
			return err
		}
		sort.Strings(names)
		defer f.Close()
		for _, name := range names {
			e := &walkEntry{rel: path.Join(relDir, name), dfd: dfd, name: name}
			if err := unix.Fstatat(dfd, name, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if err == unix.ENOENT {
					continue
				}
				return &os.PathError{Op: "lstat", Path: path.Join(s.name, e.rel), Err: err}
			}
			isDir := e.st.Mode&unix.S_IFMT == unix.S_IFDIR
			excluded, childInfo := false, patternmatcher.MatchInfo{}
			if t.ignore != nil {
				excluded, childInfo, err = t.ignore.MatchesUsingParentResults(path.Join(s.real, e.rel), info)
				if err != nil {
					return err
				}
			}
			if excluded && (!isDir || !t.ignore.Exclusions()) {
				continue
			}
			if e.st.Mode&unix.S_IFMT == unix.S_IFLNK {
				if e.link, err = readlinkat(dfd, name); err != nil {
					return err
				}
			}
			if excluded {
				pending = append(pending, e)
			} else {
				for _, p := range pending {
					if err := fn(p); err != nil {
						return err
					}
				}
				pending = pending[:0]
				if err := fn(e); err != nil {
					return err
				}
			}
			if isDir {
				cfd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return &os.PathError{Op: "open", Path: path.Join(s.name, e.rel), Err: err}
				}
				if err := walkDir(cfd, e.rel, childInfo); err != nil {
					return err
				}
				if n := len(pending); excluded && n > 0 && pending[n-1] == e {
					pending = pending[:n-1] // nothing kept below it
				}
			}
		}
		return nil
	}
	info := patternmatcher.MatchInfo{}
	return walkDir(fd, "", info)
}

// readlinkat reads a symlink relative to a directory descriptor.
func readlinkat(dfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
