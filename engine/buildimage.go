package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/manifest"
)

// Labels docker compose puts on the images it builds.
const (
	buildLabelProject = "com.docker.compose.project"
	buildLabelService = "com.docker.compose.service"
)

// ServiceBuildOptions turns a service's build: section into the builder's
// options, as docker compose does: the image is named after the service's
// image: (or PROJECT-SERVICE) and build.tags, and labelled with the
// project and service. The CLI (`berth build`) and up --build share it.
func ServiceBuildOptions(p *manifest.Project, s manifest.Service) (build.Options, error) {
	b := s.Build
	if b == nil {
		return build.Options{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s has no build section", s.Name))
	}
	if strings.Contains(b.Context, "://") || strings.HasPrefix(b.Context, "git@") {
		return build.Options{}, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("service %s: build context %s: remote contexts are not supported", s.Name, b.Context))
	}
	named, err := namedContexts(s.Name, b)
	if err != nil {
		return build.Options{}, err
	}
	secrets, err := buildSecrets(s.Name, b)
	if err != nil {
		return build.Options{}, err
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	for _, pl := range b.Platforms {
		if pl != host {
			return build.Options{}, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("service %s: build platform %s: berth builds for this host (%s) only", s.Name, pl, host))
		}
	}
	labels := maps.Clone(b.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[buildLabelProject], labels[buildLabelService] = p.Name, s.Name
	return build.Options{
		Context: b.Context, Dockerfile: b.Dockerfile, DockerfileInline: b.DockerfileInline,
		Args: maps.Clone(b.Args), Target: b.Target, Labels: labels,
		Tags: append([]string{s.Image}, b.Tags...), NoCache: b.NoCache, Pull: b.Pull,
		Network: b.Network, ExtraHosts: b.ExtraHosts, ShmSize: b.ShmSize, Name: s.Name,
		NamedContexts: named, Secrets: secrets,
	}, nil
}

// buildSecrets reads build.secrets, file ones from the host as docker
// compose does.
func buildSecrets(service string, b *manifest.Build) (map[string][]byte, error) {
	if len(b.Secrets) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(b.Secrets))
	for _, s := range b.Secrets {
		if s.File == "" {
			out[s.ID] = []byte(s.Content)
			continue
		}
		data, err := os.ReadFile(s.File)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("service %s: build secret %s: %v", service, s.ID, err))
		}
		out[s.ID] = data
	}
	return out, nil
}

// namedContexts turns build.additional_contexts into the builder's named
// contexts: directories (compose-go has made them absolute from the
// project directory; a relative one is taken from the build context) and
// docker-image:// references. Another service's image (service:NAME) and
// remote contexts are refused.
func namedContexts(service string, b *manifest.Build) (map[string]string, error) {
	if len(b.AdditionalContexts) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(b.AdditionalContexts))
	for name, v := range b.AdditionalContexts {
		switch {
		case strings.HasPrefix(v, "docker-image://"):
		case strings.HasPrefix(v, "service:"), strings.HasPrefix(v, "target:"), strings.Contains(v, "://"), strings.HasPrefix(v, "git@"):
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("service %s: build.additional_contexts.%s: %s: berth takes directories and docker-image:// references", service, name, v))
		case !filepath.IsAbs(v):
			v = filepath.Join(b.Context, v)
		}
		out[name] = v
	}
	return out, nil
}

// buildService builds a service's image with the engine's builder.
func (e *Engine) buildService(ctx context.Context, p *manifest.Project, s manifest.Service, sink progress.Sink) error {
	opts, err := ServiceBuildOptions(p, s)
	if err != nil {
		return err
	}
	opts.Sink = sink
	if _, err := e.Builder.Build(ctx, opts); err != nil {
		return fmt.Errorf("build service %s: %w", s.Name, err)
	}
	return nil
}
