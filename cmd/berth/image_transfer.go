package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/image"
)

// registryAuth is what the CLI user's docker config holds for the registry
// of ref (honouring DOCKER_CONFIG), sent along with a pull or push so the
// daemon acts with the user's credentials, as docker does. Anonymous is
// an empty config, never nil, so the daemon never falls back to its own.
func registryAuth(ref string) (*authn.AuthConfig, error) {
	r, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	reg, err := name.NewRegistry(r.RegistryHost())
	if err != nil {
		return nil, err
	}
	a, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.Registry, err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.Registry, err)
	}
	return cfg, nil
}

type imagePullOptions struct {
	quiet    bool
	platform string
}

func newImagePullCommand(opts *globalOptions) *cobra.Command {
	o := &imagePullOptions{}
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagePull(cmd, opts, o, args[0])
		},
	}
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&o.platform, "platform", "", "Pull for this platform (os/arch[/variant])")
	return cmd
}

func runImagePull(cmd *cobra.Command, opts *globalOptions, o *imagePullOptions, ref string) error {
	pullOpts := image.PullOptions{}
	if o.platform != "" {
		p, err := image.ParsePlatform(o.platform)
		if err != nil {
			return err
		}
		pullOpts.Platform = &p
	}
	auth, err := registryAuth(ref)
	if err != nil {
		return err
	}
	pullOpts.Auth = auth
	ic, err := imageClient(cmd, opts)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !o.quiet {
		pullOpts.Sink = newProgressPrinter(out, opts.Progress).sink
	}
	if _, err := ic.Pull(cmd.Context(), ref, pullOpts); err != nil {
		return err
	}
	r, _ := image.ParseReference(ref)
	fmt.Fprintln(out, r.String())
	return nil
}

func newImagePushCommand(opts *globalOptions) *cobra.Command {
	quiet := false
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Push an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			auth, err := registryAuth(args[0])
			if err != nil {
				return err
			}
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			pushOpts := image.PushOptions{Auth: auth}
			if !quiet {
				pushOpts.Sink = newProgressPrinter(out, opts.Progress).sink
			}
			res, err := ic.Push(cmd.Context(), args[0], pushOpts)
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(out, res.Reference)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func newImageSaveCommand(opts *globalOptions) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to a tarball (streamed to stdout by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			so := image.SaveOptions{Format: format}
			if output == "" || output == "-" {
				out := cmd.OutOrStdout()
				if isTerminal(out) {
					return errors.New("cowardly refusing to save to a terminal; use the -o flag or redirect")
				}
				return ic.Save(cmd.Context(), out, args, so)
			}
			return saveToFile(cmd.Context(), ic, output, args, so)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file instead of stdout")
	cmd.Flags().StringVar(&format, "format", image.DockerArchive, "Archive format: docker-archive or oci-archive")
	return cmd
}

// saveToFile writes the tarball beside path and renames it into place, so
// a failed save never leaves a half-written file under the name.
func saveToFile(ctx context.Context, ic *api.ImageClient, path string, refs []string, so image.SaveOptions) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := ic.Save(ctx, f, refs, so); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func newImageLoadCommand(opts *globalOptions) *cobra.Command {
	var input, platform string
	quiet := false
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a docker-archive or OCI-layout tarball (read from stdin by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if f, ok := in.(*os.File); ok && isTerminal(f) {
				return errors.New("requested load from stdin, but stdin is a terminal; use -i or redirect")
			}
			lo := image.LoadOptions{}
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				lo.Platform = &p
			}
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !quiet {
				lo.Sink = newProgressPrinter(out, opts.Progress).sink
			}
			loaded, err := ic.Load(cmd.Context(), in, lo)
			if err != nil {
				return err
			}
			for _, l := range loaded {
				if l.Reference != "" {
					fmt.Fprintln(out, "Loaded image: "+image.Familiar(l.Reference))
				} else {
					fmt.Fprintln(out, "Loaded image ID: "+l.ID)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from a tar archive file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	cmd.Flags().StringVar(&platform, "platform", "", "Load only this platform (os/arch[/variant])")
	return cmd
}

func newImageImportCommand(opts *globalOptions) *cobra.Command {
	var message, platform string
	var changes []string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import a root file system tarball as an image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			imp := image.ImportOptions{Message: message}
			if len(args) == 2 {
				imp.Reference = args[1]
			}
			cfg, err := applyChanges(changes)
			if err != nil {
				return err
			}
			imp.Config = cfg
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				imp.Platform = &p
			}
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			img, err := ic.Import(cmd.Context(), in, imp)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set the commit message of the imported image")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)")
	cmd.Flags().StringVar(&platform, "platform", "", "Set the platform of the image (os/arch[/variant])")
	return cmd
}
