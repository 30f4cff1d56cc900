package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/tarcopy"
	"github.com/berth-dev/berth/reconcile"
)

// develop carries out develop.watch rules on the engine's containers.
type develop struct{ d *Daemon }

func (dv develop) running(project, service string) []container.Container {
	return dv.d.engine.Containers.List(container.ListOptions{Labels: map[string]string{
		reconcile.LabelProject: project, reconcile.LabelService: service, reconcile.LabelOneOff: "False",
	}})
}

// Sync copies the changed files into every running replica (one tar each,
// with the directories on the way, so new subdirectories appear even in an
// image without mkdir) and removes the deleted ones.
func (dv develop) Sync(ctx context.Context, project, service string, files []reconcile.SyncFile) error {
	var errs []error
	for _, c := range dv.running(project, service) {
		for _, f := range files {
			if f.Local == "" {
				if err := dv.d.engine.Containers.RemovePath(ctx, c.ID, f.Target); err != nil {
					errs = append(errs, fmt.Errorf("%s: remove %s: %w", c.Name, f.Target, err))
				}
			}
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeSyncTar(pw, files)) }()
		if err := dv.d.engine.Containers.CopyTo(ctx, c.ID, "/", pr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
		pr.Close()
	}
	return errors.Join(errs...)
}

// writeSyncTar writes the files that exist, named by their target paths.
func writeSyncTar(w io.Writer, files []reconcile.SyncFile) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, f := range files {
		if f.Local == "" {
			continue
		}
		name := strings.TrimPrefix(path.Clean(f.Target), "/")
		// The directories on the way, outermost first, each once.
		var parents []string
		for dir := path.Dir(name); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
			dirs[dir] = true
			parents = append([]string{dir}, parents...)
		}
		for _, dir := range parents {
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		info, err := os.Lstat(f.Local)
		if err != nil {
			continue // gone since the event: the next event says so
		}
		if err := tarcopy.Add(tw, f.Local, name, info); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Restart stops and starts every replica.
func (dv develop) Restart(ctx context.Context, project, service string) error {
	var errs []error
	for _, c := range dv.running(project, service) {
		if err := dv.d.engine.Containers.Stop(ctx, c.ID, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := dv.d.engine.Containers.Start(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Exec runs cmd in every replica; a non-zero status is an error.
func (dv develop) Exec(ctx context.Context, project, service string, cmd []string) error {
	var errs []error
	for _, c := range dv.running(project, service) {
		code, err := dv.d.engine.Containers.Exec(ctx, c.ID, container.ExecConfig{Cmd: cmd}, container.ExecIO{})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		case code != 0:
			errs = append(errs, fmt.Errorf("%s: %s exited with %d", c.Name, strings.Join(cmd, " "), code))
		}
	}
	return errors.Join(errs...)
}
