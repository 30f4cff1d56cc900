package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"go.yaml.in/yaml/v4"
)

// Formats Render prints.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// Render prints the project as `docker compose config` does: compose-go's
// canonical model of the files, in "yaml" or "json", byte for byte what
// docker compose v5 prints for the same files and environment.
func (p *Project) Render(format string) ([]byte, error) {
	if p.compose == nil {
		return nil, fmt.Errorf("render project %s: it was not loaded from files here: %w", p.Name, errdefs.ErrFailedPrecondition)
	}
	return renderProject(p.compose, format)
}

// RenderFiles loads the files as `docker compose config` does with
// --no-interpolate, --no-normalize or --no-path-resolution, and prints
// them. It makes no Project: such a model is for reading, not running.
func RenderFiles(ctx context.Context, opts Options, r RenderOptions, format string) ([]byte, error) {
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	ld, err := newLoad(opts)
	if err != nil {
		return nil, err
	}
	if !r.NoInterpolate {
		cp, err := ld.project(ctx, r)
		if err != nil {
			return nil, err
		}
		return renderProject(cp, format)
	}
	// Without interpolation docker compose prints the raw merged tree
	// (cmd/compose/config.go runConfigNoInterpolate), with no $ escaping.
	model, err := ld.model(ctx, r)
	if err != nil {
		return nil, err
	}
	if format == FormatJSON {
		return json.MarshalIndent(model, "", "  ")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(model); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return buf.Bytes(), nil
}

func checkFormat(format string) error {
	if format != FormatYAML && format != FormatJSON {
		return fmt.Errorf("unsupported format %q: yaml or json: %w", format, errdefs.ErrInvalidArgument)
	}
	return nil
}

func renderProject(cp *types.Project, format string) ([]byte, error) {
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	if format == FormatJSON {
		b, err = cp.MarshalJSON()
	} else {
		b, err = cp.MarshalYAML()
	}
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// Values are interpolated: escape $ so that the output loads again to
	// the same values (docker compose does the same).
	return bytes.ReplaceAll(b, []byte("$"), []byte("$$")), nil
}

// ServiceNames are the services' names, sorted.
func (p *Project) ServiceNames() []string { return sortedKeys(p.Services) }

// NetworkKeys are the networks' Compose keys, sorted.
func (p *Project) NetworkKeys() []string { return sortedKeys(p.Networks) }

// VolumeKeys are the volumes' Compose keys, sorted.
func (p *Project) VolumeKeys() []string { return sortedKeys(p.Volumes) }

// DependencyOrder lists the services so that each comes after those it
// depends on; services that do not depend on each other come by name.
// (Load refused dependency cycles.)
func (p *Project) DependencyOrder() []string {
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		s, ok := p.Services[name]
		if !ok {
			return
		}
		for _, dep := range sortedKeys(s.DependsOn) {
			visit(dep)
		}
		order = append(order, name)
	}
	for _, name := range p.ServiceNames() {
		visit(name)
	}
	return order
}

// Images are the images the services run, one per service, by service name.
func (p *Project) Images() []string {
	var images []string
	for _, name := range p.ServiceNames() {
		images = append(images, p.Services[name].Image)
	}
	return images
}

// ContainerName is the name of a service's replica n (from 1):
// container_name, or PROJECT-SERVICE-N as docker compose names it.
func (p *Project) ContainerName(service string, n int) string {
	if s, ok := p.Services[service]; ok && s.ContainerName != "" {
		return s.ContainerName
	}
	return fmt.Sprintf("%s%s%s%s%d", p.Name, nameSeparator, service, nameSeparator, n)
}

// Scale sets a service's replica count (--scale SERVICE=N). The config
// hash does not change.
func (p *Project) Scale(service string, replicas int) error {
	s, ok := p.Services[service]
	if !ok {
		return fmt.Errorf("scale: no such service: %s: %w", service, errdefs.ErrNotFound)
	}
	if replicas < 0 {
		return fmt.Errorf("scale %s: replicas must be 0 or more, not %d: %w", service, replicas, errdefs.ErrInvalidArgument)
	}
	if s.ContainerName != "" && replicas > 1 {
		return fmt.Errorf("scale %s: container_name %q allows one replica only: %w", service, s.ContainerName, errdefs.ErrInvalidArgument)
	}
	s.Replicas = replicas
	p.Services[service] = s
	return nil
}
