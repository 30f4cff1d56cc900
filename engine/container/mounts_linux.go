package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// prepareMounts resolves the container's mounts to runtime-spec mounts:
// bind sources checked (or made), named volumes found (or made, as docker
// makes them), empty volumes filled from the image (copy-up), tmpfs sized.
// The rootfs must be mounted: copy-up reads the image's content from it.
func (m *Manager) prepareMounts(c *Container) ([]specs.Mount, error) {
	var out []specs.Mount
	covered := map[string]bool{}
	for _, mt := range c.Config.Mounts {
		target := filepath.Clean(mt.Target)
		covered[target] = true
		switch mt.Type {
		case MountBind:
			if _, err := os.Stat(mt.Source); err != nil {
				if !errors.Is(err, os.ErrNotExist) || !mt.CreateHostPath {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config for type \"bind\": bind source path does not exist: %s", mt.Source))
				}
				if err := os.MkdirAll(mt.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", mt.Source, err)
				}
			}
			out = append(out, bindMount(mt.Source, target, mt.ReadOnly, mt.Propagation))
		case MountVolume:
			name := mt.Source
			if name == "" {
				name = c.AnonymousVolumes[target]
			}
			src, err := m.volumeSource(c, name, target, mt.NoCopy)
			if err != nil {
				return nil, err
			}
			out = append(out, bindMount(src, target, mt.ReadOnly, mt.Propagation))
		case MountTmpfs:
			opts := []string{"nosuid", "nodev"}
			if mt.TmpfsSize > 0 {
				opts = append(opts, "size="+strconv.FormatInt(mt.TmpfsSize, 10))
			}
			mode := mt.TmpfsMode
			if mode == 0 {
				mode = 0o1777
			}
			opts = append(opts, "mode="+strconv.FormatUint(uint64(mode), 8))
			if mt.ReadOnly {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount %s: unknown type %q", mt.Target, mt.Type))
		}
	}
	for i, f := range c.Config.Files {
		src, err := m.writeFile(c, i, f)
		if err != nil {
			return nil, err
		}
		covered[filepath.Clean(f.Target)] = true
		out = append(out, bindMount(src, filepath.Clean(f.Target), true, ""))
	}
	// The image's VOLUMEs that no mount covers got anonymous volumes at create.
	for target, name := range c.AnonymousVolumes {
		if covered[target] {
			continue
		}
		src, err := m.volumeSource(c, name, target, false)
		if err != nil {
			return nil, err
		}
		out = append(out, bindMount(src, target, false, ""))
	}
	return out, nil
}

// writeFile puts the content of the container's i-th file in its
// directory, with the file's owner and mode, for a read-only bind mount.
// It is written again at every start, so it always has the config's content.
func (m *Manager) writeFile(c *Container, i int, f File) (string, error) {
	dir := filepath.Join(m.dir(c.ID), "files")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	mode := os.FileMode(f.Mode)
	if mode == 0 {
		mode = 0o444
	}
	path := filepath.Join(dir, strconv.Itoa(i))
	if err := atomicfile.WriteVolatile(path, f.Content, 0o600); err != nil {
		return "", fmt.Errorf("file %s: %w", f.Target, err)
	}
	if err := os.Chown(path, f.UID, f.GID); err != nil {
		return "", fmt.Errorf("file %s: %w", f.Target, err)
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		return "", fmt.Errorf("file %s: %w", f.Target, err)
	}
	return path, nil
}

func bindMount(src, dst string, readOnly bool, propagation string) specs.Mount {
	opts := []string{"rbind"}
	if readOnly {
		opts = append(opts, "ro")
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	opts = append(opts, propagation)
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}

// volumeSource finds (or makes) the volume and fills it from the image's
// content at target when it is empty, as docker does on first use.
func (m *Manager) volumeSource(c *Container, name, target string, noCopy bool) (string, error) {
	v, err := m.volumes.Get(name)
	if errdefs.IsNotFound(err) {
		v, err = m.volumes.Create(volume.CreateOptions{Name: name})
	}
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	src := v.Source()
	if noCopy {
		return src, nil
	}
	empty, err := isEmptyDir(src)
	if err != nil || !empty {
		return src, err
	}
	from := filepath.Join(m.rootfsDir(c.ID), target)
	info, err := os.Lstat(from)
	if err != nil || !info.IsDir() {
		return src, nil // nothing in the image there
	}
	if err := copyTree(from, src); err != nil {
		return "", fmt.Errorf("volume %s: copy image content of %s: %w", name, target, err)
	}
	// The volume's root takes the owner and mode of the image's directory.
	st := info.Sys().(*syscall.Stat_t)
	_ = os.Lchown(src, int(st.Uid), int(st.Gid))
	_ = os.Chmod(src, info.Mode().Perm())
	return src, nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// copyTree copies the content of src into dst (which exists), keeping
// modes, owners, times and symlinks; device nodes and sockets are skipped.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		to := filepath.Join(dst, rel)
		st := info.Sys().(*syscall.Stat_t)
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(to, mode.Perm()); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		case mode&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, to); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := copyFile(path, to, mode.Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		_ = os.Lchown(to, int(st.Uid), int(st.Gid))
		if info.Mode()&os.ModeSymlink == 0 {
			_ = os.Chmod(to, info.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
			_ = os.Chtimes(to, info.ModTime(), info.ModTime())
		}
		return nil
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
