package build

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/engine/image"
)

// Commit makes an image of a container's writable layer on top of the
// image the container was made from, with the container's configuration
// changed by opts.Changes, as docker commit does. The caller freezes the
// container (opts.Pause) for as long as Commit runs.
func (b *Builder) Commit(ctx context.Context, src CommitSource, opts CommitOptions) (image.Image, error) {
	cfg, err := ApplyChanges(src.Config, opts.Changes)
	if err != nil {
		return image.Image{}, err
	}
	var tags []string
	if opts.Reference != "" {
		tags = []string{opts.Reference}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteLayer(pw, src.Layer)) }()
	now := time.Now().UTC()
	img, err := b.images.Create(ctx, image.CreateOptions{
		Base: src.ImageID, Layers: []image.NewLayer{{Tar: pr}}, Config: cfg,
		History: []v1.History{{Created: v1.Time{Time: now}, CreatedBy: src.CreatedBy, Comment: opts.Comment, Author: opts.Author}},
		Created: now, Author: opts.Author, Tags: tags,
	})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return image.Image{}, fmt.Errorf("commit: %w", err)
	}
	return img, nil
}

// ApplyChanges applies Dockerfile instructions that change only the
// configuration (commit's and import's --change: CMD, ENTRYPOINT, ENV,
// EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD, HEALTHCHECK,
// SHELL) to cfg, expanding variables with its ENV as a build would.
func ApplyChanges(cfg v1.Config, changes []string) (v1.Config, error) {
	j := &job{lex: shell.NewLex('\\'), steps: &steps{}, declared: map[string]bool{}}
	sr := &stageRun{st: &state{config: cloneConfig(cfg), cmdSet: true}}
	for _, change := range changes {
		res, err := parser.Parse(strings.NewReader(change))
		if err != nil {
			return cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--change %q: %v", change, err))
		}
		for _, node := range res.AST.Children {
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--change %q: %v", change, err))
			}
			switch c := cmd.(type) {
			case *instructions.CmdCommand, *instructions.EntrypointCommand, *instructions.EnvCommand,
				*instructions.ExposeCommand, *instructions.LabelCommand, *instructions.UserCommand,
				*instructions.VolumeCommand, *instructions.StopSignalCommand, *instructions.OnbuildCommand,
				*instructions.HealthCheckCommand, *instructions.ShellCommand:
			case *instructions.WorkdirCommand:
				// Only the configuration: a commit makes no directory.
				sr.st.config.WorkingDir = path.Join("/", sr.st.config.WorkingDir, c.Path)
				if path.IsAbs(c.Path) {
					sr.st.config.WorkingDir = path.Clean(c.Path)
				}
				continue
			default:
				return cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--change %q: %s cannot be changed; use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL or WORKDIR", change, cmd.Name()))
			}
			if err := j.dispatch(context.Background(), sr, cmd); err != nil {
				return cfg, fmt.Errorf("--change %q: %w", change, err)
			}
		}
	}
	return sr.st.config, nil
}
