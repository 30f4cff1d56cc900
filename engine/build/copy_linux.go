package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// copyOp is a COPY or ADD after expansion.
type copyOp struct {
	instructions.SourcesAndDest
	kind         string // COPY or ADD
	from         string
	chown, chmod string
	link         bool
	add          bool
	parents      bool
	excludes     []string
	checksum     string
	unpack       *bool
	text         string // the instruction as written
}

// copyItem is one source of a copy, resolved in its tree.
type copyItem struct {
	tree *srcTree
	src  source
	// url is set for a file ADD downloaded: it is never extracted, and
	// takes its name from the URL.
	url string
}

// dispatchCopy copies files from the context, a stage or an image into
// the stage's state. For the context, the files' content goes into the
// step's key, so that changing one copied file reruns this step.
func (j *job) dispatchCopy(ctx context.Context, sr *stageRun, op copyOp) error {
	st := sr.st
	switch {
	case op.parents:
		return errdefs.ErrNotImplemented.WithMessage(op.kind + " --parents is not supported")
	case len(op.excludes) > 0:
		return errdefs.ErrNotImplemented.WithMessage(op.kind + " --exclude is not supported")
	}
	var chmod *uint32
	if op.chmod != "" {
		m, err := strconv.ParseUint(op.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s --chmod=%s: want an octal mode such as 0755", op.kind, op.chmod))
		}
		mm := uint32(m)
		chmod = &mm
	}
	dest := op.DestPath
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.config.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	if n := len(op.SourcePaths) + len(op.SourceContents); n > 1 && !destDir {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("When using %s with more than one source file, the destination must be a directory and end with a /", op.kind))
	}
	createdBy := op.kind + " "
	if op.from != "" {
		createdBy += "--from=" + op.from + " "
	}
	if op.chown != "" {
		createdBy += "--chown=" + op.chown + " "
	}
	if op.chmod != "" {
		createdBy += "--chmod=" + op.chmod + " "
	}
	names := append([]string{}, op.SourcePaths...)
	for _, c := range op.SourceContents {
		names = append(names, "<<"+c.Path)
	}
	createdBy += strings.Join(names, " ") + " " + op.DestPath
	keyParts := []string{createdBy}
	for _, c := range op.SourceContents {
		keyParts = append(keyParts, "heredoc", c.Path, c.Data)
	}

	// Where the files come from: a stage or an image (known by its key
	// or ID; its files are read when the step runs), or the context
	// (hashed now) and, for ADD, URLs (downloaded now).
	var openFrom func(ctx context.Context) (*srcTree, func(), error)
	var items []copyItem
	if op.from != "" {
		from, _, err := j.lex.ProcessWord(op.from, st.expandEnv())
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s --from=%s: %v", op.kind, op.from, err))
		}
		if tree, ok := j.contextTree(sr, from); ok {
			// A named context's directory: hashed now, as the build context.
			h := sha256.New()
			for _, p := range op.SourcePaths {
				srcs, err := tree.resolve(p)
				if err != nil {
					return fmt.Errorf("%s --from=%s %s: %w", op.kind, from, p, err)
				}
				for _, s := range srcs {
					if err := tree.digest(h, s); err != nil {
						return fmt.Errorf("%s --from=%s %s: %w", op.kind, from, s.name, err)
					}
					items = append(items, copyItem{tree: tree, src: s})
				}
			}
			keyParts = append(keyParts, "context "+from, hex.EncodeToString(h.Sum(nil)))
		} else {
			label, carrier, key, err := j.fromSource(ctx, sr, from)
			if err != nil {
				return fmt.Errorf("%s --from=%s: %w", op.kind, from, err)
			}
			keyParts = append(keyParts, key)
			openFrom = func(ctx context.Context) (*srcTree, func(), error) { return j.b.openState(ctx, carrier, label) }
		}
	} else {
		h := sha256.New()
		for _, p := range op.SourcePaths {
			if isURL(p) {
				if !op.add {
					return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("COPY %s: COPY takes no URLs; use ADD", p))
				}
				item, cleanup, err := j.download(ctx, p, op.checksum)
				if err != nil {
					return fmt.Errorf("ADD %s: %w", p, err)
				}
				defer cleanup()
				if err := item.tree.digest(h, item.src); err != nil {
					return err
				}
				fmt.Fprintf(h, "url %s\n", p)
				items = append(items, item)
				continue
			}
			srcs, err := j.tree.resolve(p)
			if err != nil {
				return fmt.Errorf("%s %s: %w", op.kind, p, err)
			}
			for _, s := range srcs {
				if err := j.tree.digest(h, s); err != nil {
					return fmt.Errorf("%s %s: %w", op.kind, s.name, err)
				}
				items = append(items, copyItem{tree: j.tree, src: s})
			}
		}
		keyParts = append(keyParts, hex.EncodeToString(h.Sum(nil)))
	}
	wildcards := false
	for _, p := range op.SourcePaths {
		wildcards = wildcards || hasWildcard(p)
	}
	key := chainKey(st.key, keyParts...)
	return j.layerStep(ctx, sr, strings.TrimSpace(op.text), createdBy, key, func(ctx context.Context, ws *workspace, _ *step) ([]string, error) {
		dst, err := openFSRoot(ws.rootfs, true)
		if err != nil {
			return nil, err
		}
		defer dst.close()
		cp := &copier{dst: dst, dest: dest, destDir: destDir, chmod: chmod, add: op.add, unpack: op.unpack}
		if op.chown != "" {
			own, err := chownOwner(dst, op.chown)
			if err != nil {
				return nil, fmt.Errorf("--chown=%s: %w", op.chown, err)
			}
			cp.own = &own
		}
		if openFrom != nil {
			tree, release, err := openFrom(ctx)
			if err != nil {
				return nil, err
			}
			defer release()
			for _, p := range op.SourcePaths {
				srcs, err := tree.resolve(p)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", op.kind, p, err)
				}
				for _, s := range srcs {
					items = append(items, copyItem{tree: tree, src: s})
				}
			}
		}
		cp.many = len(items)+len(op.SourceContents) > 1 || wildcards
		for _, it := range items {
			if err := cp.copy(it); err != nil {
				return nil, fmt.Errorf("%s %s: %w", op.kind, it.src.name, err)
			}
		}
		for _, c := range op.SourceContents {
			if err := cp.heredoc(c); err != nil {
				return nil, fmt.Errorf("%s <<%s: %w", op.kind, c.Path, err)
			}
		}
		return nil, nil
	})
}

// fromSource resolves a --from: an earlier stage (built first) or an
// image; it returns a label for errors, the carrier image to mount and
// the part of the cache key that stands for its content.
func (j *job) fromSource(ctx context.Context, sr *stageRun, from string) (label, carrier, key string, err error) {
	if k, ok := j.df.findStage(from, sr.index); ok {
		src, err := j.stage(ctx, k)
		if err != nil {
			return "", "", "", err
		}
		return "stage " + j.df.stageName(k), src.st.carrier, "stage:" + src.st.key, nil
	}
	if _, later := j.df.findStage(from, len(j.df.stages)); later {
		return "", "", "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("stage %s is not defined before this one", from))
	}
	if _, ok := j.contexts[from]; ok {
		return "", "", "", errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("context %s is a directory: COPY --from reads it, RUN --mount does not yet", from))
	}
	img, err := j.baseImage(ctx, from)
	if err != nil {
		return "", "", "", err
	}
	return "image " + from, img.ID, "image:" + img.ID, nil
}

// contextTree is the directory of the named context from, unless an
// earlier stage has that name (a stage comes first, as with buildkit).
func (j *job) contextTree(sr *stageRun, from string) (*srcTree, bool) {
	if _, isStage := j.df.findStage(from, sr.index); isStage {
		return nil, false
	}
	t, ok := j.contexts[from]
	return t, ok
}

// openState mounts a carrier's layers to read files from them.
func (b *Builder) openState(ctx context.Context, carrier, label string) (*srcTree, func(), error) {
	ws, err := b.mountState(ctx, carrier)
	if err != nil {
		return nil, nil, err
	}
	root, err := openFSRoot(ws.rootfs, true)
	if err != nil {
		ws.release()
		return nil, nil, err
	}
	return &srcTree{root: root, label: label}, func() {
		root.close()
		if err := ws.release(); err != nil {
			b.log.Warn("builder: release source mount", "err", err)
		}
	}, nil
}

// digest writes what a copy of s depends on into h: for each file its
// path, type, mode, link target, and content hash (owners only when they
// are kept, outside the context).
func (t *srcTree) digest(h hash.Hash, s source) error {
	fmt.Fprintf(h, "source %s %o\n", s.name, s.st.Mode)
	if !s.isDir() {
		if s.st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil
		}
		sum, err := t.hashes.sum(s.real, &s.st, func() (int, error) { return t.root.open(s.name, unix.O_RDONLY, 0) })
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "= %s\n", sum)
		return nil
	}
	return t.walk(s, func(e *walkEntry) error {
		fmt.Fprintf(h, "%s %o %s", e.rel, e.st.Mode, e.link)
		if !t.context {
			fmt.Fprintf(h, " %d:%d", e.st.Uid, e.st.Gid)
		}
		if e.st.Mode&unix.S_IFMT == unix.S_IFREG {
			dfd, name := e.dfd, e.name
			sum, err := t.hashes.sum(path.Join(s.real, e.rel), &e.st, func() (int, error) {
				return unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " = %s", sum)
		}
		_, err := io.WriteString(h, "\n")
		return err
	})
}

// copier writes sources into an image's root for one COPY or ADD.
type copier struct {
	dst     *fsRoot
	dest    string // absolute, clean
	destDir bool   // the destination was written as a directory
	many    bool   // several sources, or a wildcard: dest is a directory
	own     *owner // --chown; nil keeps the source's (root for the context)
	chmod   *uint32
	add     bool
	unpack  *bool
}

// ownerOf is who a copied entry belongs to.
func (c *copier) ownerOf(t *srcTree, st *unix.Stat_t) owner {
	switch {
	case c.own != nil:
		return *c.own
	case t.context:
		return owner{}
	}
	return owner{int(st.Uid), int(st.Gid)}
}

// dirOwner owns the directories a copy makes on the way to its destination.
func (c *copier) dirOwner() owner {
	if c.own != nil {
		return *c.own
	}
	return owner{}
}

// copy copies one source: a directory's content into the destination, a
// file to it or into it, an archive (ADD) unpacked into it.
func (c *copier) copy(it copyItem) error {
	s := it.src
	if s.isDir() {
		fd, err := c.dst.mkdirAll(c.dest, c.dirOwner())
		if err != nil {
			return err
		}
		defer closeFD(fd)
		return c.copyTree(fd, it.tree, s)
	}
	if c.add && it.url == "" && (c.unpack == nil || *c.unpack) {
		done, err := c.extract(it)
		if done || err != nil {
			return err
		}
	}
	target := c.dest
	if c.destDir || c.many || c.isDir(c.dest) {
		base := path.Base(s.name)
		if it.url != "" {
			base = urlBase(it.url)
		}
		target = path.Join(c.dest, base)
	}
	pfd, err := c.dst.mkdirAll(path.Dir(target), c.dirOwner())
	if err != nil {
		return err
	}
	defer closeFD(pfd)
	sfd, err := it.tree.root.open(s.name, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer closeFD(sfd)
	st := s.st
	if it.url != "" {
		st.Mode = unix.S_IFREG | 0o600 // docker's mode for downloads
	}
	return c.writeFile(pfd, path.Base(target), sfd, &st, c.ownerOf(it.tree, &st))
}

func (c *copier) isDir(p string) bool {
	st, err := c.dst.stat(p)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// copyTree copies the entries below source directory s into dir dfd.
func (c *copier) copyTree(dfd int, t *srcTree, s source) error {
	dirs := map[string]int{".": dfd}
	defer func() {
		for k, fd := range dirs {
			if k != "." {
				closeFD(fd)
			}
		}
	}()
	return t.walk(s, func(e *walkEntry) error {
		parent, ok := dirs[path.Dir(e.rel)]
		if !ok {
			return fmt.Errorf("%s: parent directory not copied", e.rel)
		}
		own := c.ownerOf(t, &e.st)
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			fd, err := c.makeDir(parent, e.name, &e.st, own)
			if err != nil {
				return fmt.Errorf("%s: %w", e.rel, err)
			}
			dirs[e.rel] = fd
			return nil
		case unix.S_IFREG:
			sfd, err := unix.Openat(e.dfd, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: e.rel, Err: err}
			}
			defer closeFD(sfd)
			return c.writeFile(parent, e.name, sfd, &e.st, own)
		case unix.S_IFSOCK:
			return nil
		}
		return c.writeSpecial(parent, e.name, &e.st, e.link, own)
	})
}

// makeDir makes (or keeps) directory name in dfd with st's mode and own,
// and returns it open.
func (c *copier) makeDir(dfd int, name string, st *unix.Stat_t, own owner) (int, error) {
	isDir, err := clearEntry(dfd, name)
	if err != nil {
		return -1, err
	}
	if !isDir {
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return -1, err
		}
	}
	if err := c.setMeta(dfd, name, st, own, false); err != nil {
		return -1, err
	}
	return unix.Openat(dfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// writeFile copies the open file sfd to name in dfd (replacing a file or
// link there; a directory there is an error).
func (c *copier) writeFile(dfd int, name string, sfd int, st *unix.Stat_t, own owner) error {
	isDir, err := clearEntry(dfd, name)
	if err != nil {
		return err
	}
	if isDir {
		return fmt.Errorf("cannot replace directory %s with a file", name)
	}
	wfd, err := unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	w := os.NewFile(uintptr(wfd), name)
	// A copy of the source descriptor, so that both ends are *os.File and
	// io.Copy can use copy_file_range; the caller keeps sfd.
	dup, err := unix.FcntlInt(uintptr(sfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		w.Close()
		return err
	}
	r := os.NewFile(uintptr(dup), name)
	_, err = io.Copy(w, r)
	r.Close()
	if err == nil {
		err = c.setMetaFD(w, st, own)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeSpecial makes a symlink, device or fifo like the source's.
func (c *copier) writeSpecial(dfd int, name string, st *unix.Stat_t, link string, own owner) error {
	isDir, err := clearEntry(dfd, name)
	if err != nil {
		return err
	}
	if isDir {
		return fmt.Errorf("cannot replace directory %s", name)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		if err := unix.Symlinkat(link, dfd, name); err != nil {
			return &os.PathError{Op: "symlink", Path: name, Err: err}
		}
		if err := unix.Fchownat(dfd, name, own.uid, own.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, name, []unix.Timespec{{Nsec: unix.UTIME_OMIT}, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	default:
		if err := unix.Mknodat(dfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: name, Err: err}
		}
		return c.setMeta(dfd, name, st, own, true)
	}
}

// setMeta sets owner, mode (--chmod wins) and, for non-directories, the
// mtime of name in dfd. The owner goes first: chown clears set-id bits.
func (c *copier) setMeta(dfd int, name string, st *unix.Stat_t, own owner, times bool) error {
	if err := unix.Fchownat(dfd, name, own.uid, own.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: name, Err: err}
	}
	mode := st.Mode & 0o7777
	if c.chmod != nil {
		mode = *c.chmod
	}
	if err := unix.Fchmodat(dfd, name, mode, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	if times {
		return unix.UtimesNanoAt(dfd, name, []unix.Timespec{{Nsec: unix.UTIME_OMIT}, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// setMetaFD is setMeta for an open file.
func (c *copier) setMetaFD(f *os.File, st *unix.Stat_t, own owner) error {
	fd := int(f.Fd())
	if err := unix.Fchown(fd, own.uid, own.gid); err != nil {
		return err
	}
	mode := st.Mode & 0o7777
	if c.chmod != nil {
		mode = *c.chmod
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(fd), []unix.Timespec{{Nsec: unix.UTIME_OMIT}, st.Mtim}, 0)
}

// heredoc writes a COPY <<EOF file.
func (c *copier) heredoc(sc instructions.SourceContent) error {
	target := c.dest
	if c.destDir || c.many || c.isDir(c.dest) {
		target = path.Join(c.dest, sc.Path)
	}
	pfd, err := c.dst.mkdirAll(path.Dir(target), c.dirOwner())
	if err != nil {
		return err
	}
	defer closeFD(pfd)
	name := path.Base(target)
	isDir, err := clearEntry(pfd, name)
	if err != nil {
		return err
	}
	if isDir {
		return fmt.Errorf("cannot replace directory %s with a file", target)
	}
	wfd, err := unix.Openat(pfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	w := os.NewFile(uintptr(wfd), name)
	_, err = io.WriteString(w, sc.Data)
	if err == nil {
		st := unix.Stat_t{Mode: unix.S_IFREG | 0o644}
		st.Mtim = unix.NsecToTimespec(0)
		err = c.setMetaFD(w, &st, c.dirOwner())
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// errNotArchive says an ADD source is a plain file, to be copied as is.
var errNotArchive = errors.New("not an archive")
