package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mountinfo"
	"github.com/berth-dev/berth/internal/overlay"
)

// workspace is a step's view of a build state: the state's layers stacked
// read-only under a fresh upper dir with overlayfs, mounted at rootfs.
//
//	DIR/upper, DIR/work   the step's changes, overlayfs' scratch
//	DIR/bundle/rootfs     the mount; DIR/bundle/config.json for RUN
//	DIR/empty             the lower dir of a state with no layers
type workspace struct {
	dir    string
	upper  string
	rootfs string
	lower  []string
	// mounted is true while the overlay is mounted at rootfs.
	mounted bool
}

// mountState mounts a workspace over the carrier image's snapshots ("" is
// an empty file system).
func (b *Builder) mountState(ctx context.Context, carrier string) (*workspace, error) {
	var lower []string
	if carrier != "" {
		var err error
		if lower, err = b.images.Snapshots(ctx, carrier); err != nil {
			return nil, fmt.Errorf("layers of %s: %w", shortID(carrier), err)
		}
	}
	dir, err := os.MkdirTemp(filepath.Join(b.dir, "tmp"), "step-")
	if err != nil {
		return nil, err
	}
	ws := &workspace{dir: dir, upper: filepath.Join(dir, "upper"), rootfs: filepath.Join(dir, "bundle", "rootfs"), lower: lower}
	if err := ws.mount(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return ws, nil
}

func (ws *workspace) mount() error {
	work := filepath.Join(ws.dir, "work")
	for _, d := range []string{ws.upper, work, ws.rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	lower := ws.lower
	if len(lower) == 0 {
		empty := filepath.Join(ws.dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lower = []string{empty}
	}
	if err := overlay.Mount(ws.rootfs, lower, ws.upper, work); err != nil {
		return fmt.Errorf("mount build state: %w", err)
	}
	ws.mounted = true
	return nil
}

// unmount takes the overlay away, leaving the upper dir to be read.
func (ws *workspace) unmount() error {
	if !ws.mounted {
		return nil
	}
	if err := unix.Unmount(ws.rootfs, 0); err != nil {
		if err := unix.Unmount(ws.rootfs, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount build state: %w", err)
		}
	}
	ws.mounted = false
	return nil
}

// release unmounts and deletes the workspace.
func (ws *workspace) release() error {
	err := ws.unmount()
	if err == nil {
		err = os.RemoveAll(ws.dir)
	}
	return err
}

// cleanLeftovers takes away what a build interrupted by a crash left: its
// mounts under ROOT/build/tmp, its RUN containers, its directories.
func (b *Builder) cleanLeftovers(ctx context.Context) error {
	tmp := filepath.Join(b.dir, "tmp")
	mounts, err := mountsUnder(tmp)
	if err != nil {
		return err
	}
	// Deepest first, so that nested mounts go before what holds them.
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	if b.rt != nil {
		states, err := b.rt.List(ctx)
		if err == nil {
			for _, st := range states {
				if strings.HasPrefix(st.ID, runIDPrefix) {
					_ = b.rt.Delete(ctx, st.ID, runtimeDeleteForce)
				}
			}
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(tmp, e.Name())))
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points below dir, in mount order.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := mountinfo.Unescape(fields[4])
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// shortID is an image ID cut as docker shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
