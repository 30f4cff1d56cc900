package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
)

// newContainerDiffCommand is `berth container diff`: what a container
// changed in its file system, as docker diff prints it.
func newContainerDiffCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Long: "List the files and directories a container added (A), changed (C) or deleted (D)\n" +
			"compared with its image, from its writable layer.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := connect(ctx, opts)
			if err != nil {
				return err
			}
			defer c.Close()
			changes, err := c.Builds().Changes(ctx, args[0])
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

// newContainerCommitCommand is `berth container commit`: a container's
// writable layer as a new image, as docker commit makes it.
func newContainerCommitCommand(opts *globalOptions) *cobra.Command {
	var o build.CommitOptions
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Example: "  berth container commit -m 'add tools' -c 'CMD [\"sh\"]' web myapp:debug\n" +
			"  berth container commit --change 'ENV DEBUG=1' --change 'EXPOSE 8080' web",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 2 {
				o.Reference = args[1]
			}
			c, err := connect(ctx, opts)
			if err != nil {
				return err
			}
			defer c.Close()
			img, err := c.Builds().Commit(ctx, args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	commitFlags(c.Flags(), &o)
	return c
}

func commitFlags(f *pflag.FlagSet, o *build.CommitOptions) {
	f.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	f.BoolVarP(&o.Pause, "pause", "p", true, "Pause container during commit")
}

// newCommitCommand is compose's commit: the container commit of one
// replica of a service, running or not.
func newCommitCommand(opts *globalOptions) *cobra.Command {
	var o build.CommitOptions
	var index int
	c := &cobra.Command{
		Use:     "commit [OPTIONS] SERVICE [REPOSITORY[:TAG]]",
		Short:   "Create a new image from a service container's changes",
		Example: "  berth commit -m 'with tools' web myapp:debug",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				o.Reference = args[1]
			}
			return withReplica(cmd, opts, args[0], index, true, func(s *session, ctr container.Container) error {
				img, err := s.client.Builds().Commit(cmd.Context(), ctr.ID, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), img.ID)
				return nil
			})
		},
	}
	commitFlags(c.Flags(), &o)
	c.Flags().IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

func newContainerExportCommand(opts *globalOptions) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:     "export [OPTIONS] CONTAINER",
		Short:   "Export a container's filesystem as a tar archive",
		Example: "  berth container export -o web.tar web\n  berth container export web | tar -t",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return exportContainer(cmd, cc, args[0], output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return c
}

// newExportCommand is compose's export: the container export of one
// replica of a service, running or not.
func newExportCommand(opts *globalOptions) *cobra.Command {
	var output string
	var index int
	c := &cobra.Command{
		Use:     "export [OPTIONS] SERVICE",
		Short:   "Export a service container's filesystem as a tar archive",
		Example: "  berth export -o web.tar web",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReplica(cmd, opts, args[0], index, true, func(s *session, ctr container.Container) error {
				return exportContainer(cmd, s.client.Containers(), ctr.ID, output)
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	c.Flags().IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

// exportContainer writes the tar of ref's root filesystem to the file
// output (whole or not at all), or else to stdout, unless that is a
// terminal.
func exportContainer(cmd *cobra.Command, cc *api.ContainerClient, ref, output string) error {
	if output == "" && isTerminal(cmd.OutOrStdout()) {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	tarball, err := cc.Export(cmd.Context(), ref)
	if err != nil {
		return err
	}
	defer tarball.Close()
	if output == "" {
		_, err := io.Copy(cmd.OutOrStdout(), tarball)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(output), ".export-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, tarball)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), output)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("export to %s: %w", output, err)
	}
	return nil
}
