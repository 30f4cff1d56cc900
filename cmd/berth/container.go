package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
)

// newContainerCommand is `berth container`: docker's container commands on
// berth's engine.
func newContainerCommand(opts *globalOptions) *cobra.Command {
	children := []*cobra.Command{
		newContainerCreateCommand(opts),
		newContainerRunCommand(opts),
		newContainerStartCommand(opts),
		newContainerStopCommand(opts),
		newContainerKillCommand(opts),
		newContainerRemoveCommand(opts),
		newContainerListCommand(opts),
		newContainerInspectCommand(opts),
		newContainerLogsCommand(opts),
		newContainerAttachCommand(opts),
		newContainerExecCommand(opts),
		newContainerWaitCommand(opts),
		newContainerTopCommand(opts),
		newContainerStatsCommand(opts),
		newContainerPauseCommand(opts, true),
		newContainerPauseCommand(opts, false),
		newContainerRenameCommand(opts),
	}
	// The image builder's: what a container changed, and an image of it.
	children = append(children, newContainerDiffCommand(opts), newContainerCommitCommand(opts), newContainerCpCommand(opts), newContainerExportCommand(opts))
	return group("container", "Manage containers", children...)
}

// containers connects to the daemon and returns its container client.
func containers(cmd *cobra.Command, opts *globalOptions) (*api.ContainerClient, func(), error) {
	c, err := connect(cmd.Context(), opts)
	if err != nil {
		return nil, nil, err
	}
	return c.Containers(), c.Close, nil
}

// eachArg runs op for each named container, printing the name of each
// that succeeded (as docker does) and every error; it fails if any failed.
func eachArg(cmd *cobra.Command, names []string, op func(name string) error) error {
	var failed []string
	for _, name := range names {
		if err := op(name); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), name)
	}
	if len(failed) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// createContainer creates cfg's container, pulling its image first when
// the store lacks it (docker's --pull missing).
func createContainer(cmd *cobra.Command, opts *globalOptions, cc *api.ContainerClient, cfg container.Config) (container.Container, error) {
	ctx := cmd.Context()
	c, err := cc.Create(ctx, cfg)
	if err == nil || !errdefs.IsNotFound(err) {
		return c, err
	}
	client, cerr := connect(ctx, opts)
	if cerr != nil {
		return c, err
	}
	defer client.Close()
	if _, ierr := client.Images().Inspect(ctx, cfg.Image); !errdefs.IsNotFound(ierr) {
		return c, err // the image is there: something else was not found
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Unable to find image '%s' locally\n", cfg.Image)
	auth, aerr := registryAuth(cfg.Image)
	if aerr != nil {
		return c, aerr
	}
	if _, perr := client.Images().Pull(ctx, cfg.Image, image.PullOptions{Auth: auth, Sink: newProgressPrinter(cmd.ErrOrStderr(), opts.Progress).sink}); perr != nil {
		return c, perr
	}
	return cc.Create(ctx, cfg)
}

func newContainerCreateCommand(opts *globalOptions) *cobra.Command {
	o := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.config(cmd, args[0], args[1:])
			if err != nil {
				return err
			}
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			c, err := createContainer(cmd, opts, cc, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	o.register(cmd.Flags())
	return cmd
}

func newContainerStartCommand(opts *globalOptions) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				keys, err := parseDetachKeys(detachKeys)
				if err != nil {
					return err
				}
				c, err := cc.Inspect(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return attachedRun(cmd, cc, c, interactive && c.Config.OpenStdin, true, keys)
			}
			return eachArg(cmd, args, func(name string) error { return cc.Start(cmd.Context(), name) })
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container (default \""+defaultDetachKeys+"\")")
	return cmd
}

func newContainerStopCommand(opts *globalOptions) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			t := durationFlag(cmd.Flags().Changed("time") || cmd.Flags().Changed("timeout"), timeout)
			return eachArg(cmd, args, func(name string) error {
				if signal != "" {
					// stop with another signal: send it, then wait the grace period.
					if err := cc.Kill(cmd.Context(), name, signal); err != nil {
						return err
					}
				}
				return cc.Stop(cmd.Context(), name, t)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "timeout", 10, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container (default: its stop signal)")
	return cmd
}

func newContainerKillCommand(opts *globalOptions) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return eachArg(cmd, args, func(name string) error { return cc.Kill(cmd.Context(), name, signal) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "Signal to send to the container")
	return cmd
}

func newContainerRemoveCommand(opts *globalOptions) *cobra.Command {
	var ro container.RemoveOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return eachArg(cmd, args, func(name string) error { return cc.Remove(cmd.Context(), name, ro) })
		},
	}
	cmd.Flags().BoolVarP(&ro.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&ro.Volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func newContainerWaitCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			failed := false
			for _, name := range args {
				code, err := cc.Wait(cmd.Context(), name)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
					failed = true
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func newContainerPauseCommand(opts *globalOptions, pause bool) *cobra.Command {
	use, short := "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers"
	if !pause {
		use, short = "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return eachArg(cmd, args, func(name string) error {
				if pause {
					return cc.Pause(cmd.Context(), name)
				}
				return cc.Unpause(cmd.Context(), name)
			})
		},
	}
}

func newContainerRenameCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return cc.Rename(cmd.Context(), args[0], args[1])
		},
	}
}

func newContainerInspectCommand(opts *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			var found []container.Container
			var errs []error
			for _, name := range args {
				c, err := cc.Inspect(cmd.Context(), name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				found = append(found, c)
			}
			if err := printInspect(cmd.OutOrStdout(), format, found); err != nil {
				return err
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template, or json")
	return cmd
}

// printInspect prints objects as docker's inspect does: an indented JSON
// array, or a Go template per object.
func printInspect[T any](w io.Writer, format string, objs []T) error {
	if format == "" || format == "json" {
		if objs == nil {
			objs = []T{}
		}
		b, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, o := range objs {
		// Through JSON, so templates see docker's field names.
		var generic any
		b, _ := json.Marshal(o)
		_ = json.Unmarshal(b, &generic)
		if err := tmpl.Execute(w, generic); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// shortID is the 12-digit id docker shows.
func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// waitCtx is ctx without a deadline, for waits as long as the container's life.
func waitCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// exitCodeOf is the code berth exits with when a container's command
// could not run, as docker's: 127 not found, 126 not executable, 125 else.
func exitCodeOf(err error) int {
	switch {
	case errdefs.IsNotFound(err) && strings.Contains(err.Error(), "setup failed at exec"):
		return 127
	case errdefs.IsPermissionDenied(err):
		return 126
	}
	return 125
}
