package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/manifest"
)

// configOptions are `config`'s flags, docker compose's.
type configOptions struct {
	format              string
	output              string
	quiet               bool
	services            bool
	volumes             bool
	networks            bool
	profiles            bool
	images              bool
	hash                string
	noInterpolate       bool
	noNormalize         bool
	noPathResolution    bool
	resolveImageDigests bool
}

func newConfigCommand(opts *globalOptions) *cobra.Command {
	co := &configOptions{}
	c := &cobra.Command{
		Use:   "config [OPTIONS] [SERVICE...]",
		Short: "Parse, resolve and render the Compose file in canonical format",
		Long: `Parse, resolve and render the Compose file in canonical format.

The output is docker compose's for the same files and environment, so the
two can be diffed. berth refuses, with the file, service, key and line,
what it cannot run (enable_ipv6, ...), where docker compose would print it.
--hash prints berth's config hash, which changes only when a container has
to be recreated; it differs from docker compose's.

A service's x-berth: block holds berth's own options, which docker compose
ignores:

  x-berth:
    link_env: true    # set the legacy link variables (DB_PORT=tcp://...)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfig(cmd, opts, co, args)
		},
	}
	f := c.Flags()
	f.StringVar(&co.format, "format", "", "Format the output: yaml or json")
	f.StringVarP(&co.output, "output", "o", "", "Save to file (default: stdout)")
	f.BoolVarP(&co.quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	f.BoolVar(&co.services, "services", false, "Print the service names, one per line")
	f.BoolVar(&co.volumes, "volumes", false, "Print the volume names, one per line")
	f.BoolVar(&co.networks, "networks", false, "Print the network names, one per line")
	f.BoolVar(&co.profiles, "profiles", false, "Print the profile names, one per line")
	f.BoolVar(&co.images, "images", false, "Print the image names, one per line")
	f.StringVar(&co.hash, "hash", "", `Print the config hash of these services ("svc1,svc2", or "*" for all), one per line`)
	f.BoolVar(&co.noInterpolate, "no-interpolate", false, "Don't interpolate environment variables")
	f.BoolVar(&co.noNormalize, "no-normalize", false, "Don't normalize the compose model")
	f.BoolVar(&co.noPathResolution, "no-path-resolution", false, "Don't resolve file paths")
	f.BoolVar(&co.resolveImageDigests, "resolve-image-digests", false, "Pin image tags to digests")
	return c
}

func runConfig(cmd *cobra.Command, opts *globalOptions, co *configOptions, args []string) error {
	ctx := cmd.Context()
	var out io.Writer = cmd.OutOrStdout()
	if co.quiet {
		out = io.Discard
	}
	if co.resolveImageDigests {
		return notYet("config --resolve-image-digests", "the image store")
	}

	// The list flags, in docker compose's order of precedence. They load
	// the whole project: docker compose ignores SERVICE arguments there.
	switch {
	case co.services, co.volumes, co.networks, co.hash != "":
		p, err := loadProject(ctx, opts, nil)
		if err != nil {
			return err
		}
		var lines []string
		switch {
		case co.services:
			lines = p.DependencyOrder()
		case co.volumes:
			lines = p.VolumeKeys()
		case co.networks:
			lines = p.NetworkKeys()
		default:
			if lines, err = hashLines(p, co.hash); err != nil {
				return err
			}
		}
		return printLines(out, lines)
	case co.profiles, co.images:
		p, err := loadProject(ctx, opts, args)
		if err != nil {
			return err
		}
		if co.profiles {
			return printLines(out, p.DeclaredProfiles)
		}
		return printLines(out, p.Images())
	}

	format := co.format
	if format == "" {
		format = manifest.FormatYAML
	}
	var content []byte
	if co.noInterpolate || co.noNormalize || co.noPathResolution {
		r := manifest.RenderOptions{NoInterpolate: co.noInterpolate, NoNormalize: co.noNormalize, NoPathResolution: co.noPathResolution}
		b, err := manifest.RenderFiles(ctx, manifestOptions(ctx, opts, args), r, format)
		if err != nil {
			return err
		}
		content = b
	} else {
		p, err := loadProject(ctx, opts, args)
		if err != nil {
			return err
		}
		if content, err = p.Render(format); err != nil {
			return err
		}
	}
	if co.quiet {
		return nil
	}
	if co.output != "" && len(content) > 0 {
		path := co.output
		if wd := invocationFrom(ctx).workDir; wd != "" && !filepath.IsAbs(path) {
			path = filepath.Join(wd, path)
		}
		if err := os.WriteFile(path, content, 0o666); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		return nil
	}
	_, err := out.Write(content)
	return err
}

// hashLines are "SERVICE HASH" lines, by service name, for a comma list of
// services or "*".
func hashLines(p *manifest.Project, which string) ([]string, error) {
	names := p.ServiceNames()
	if which != "*" {
		names = strings.Split(which, ",")
	}
	var lines []string
	for _, name := range names {
		s, ok := p.Services[name]
		if !ok {
			return nil, fmt.Errorf("no such service: %s: %w", name, errdefs.ErrNotFound)
		}
		lines = append(lines, name+" "+s.ConfigHash)
	}
	return lines, nil
}

func printLines(w io.Writer, lines []string) error {
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}
