package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/runtime/cli"
)

// newRuntimeCommand is `berth runtime`: runc's verbs on a bundle, so the
// runtime can be driven and compared like runc. The verbs and their flags
// are defined once, in engine/runtime/cli, which also runs them before
// berth's heavier packages initialise (a container start is measured
// against runc and crun); cobra gives them help and completion, and runs
// them when the fast path declines (help, a flag it does not know).
func newRuntimeCommand(opts *globalOptions) *cobra.Command {
	var children []*cobra.Command
	for _, c := range cli.Commands() {
		children = append(children, cobraCommand(opts, c))
	}
	return group("runtime", "Drive the OCI runtime on a bundle, as runc does", children...)
}

func cobraCommand(opts *globalOptions, c *cli.Command) *cobra.Command {
	args := cobra.RangeArgs(c.MinArgs, c.MaxArgs)
	if c.MaxArgs < 0 {
		args = cobra.MinimumNArgs(c.MinArgs)
	}
	cc := &cobra.Command{
		Use: c.Use, Short: c.Short, Aliases: c.Aliases, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := c.Run(context.Background(), cli.Globals{Root: opts.Root}, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
			var ee *cli.ExitError
			if errors.As(err, &ee) {
				return &exitError{code: ee.Code, err: ee.Err}
			}
			return err
		},
	}
	c.Flags(cc.Flags())
	cc.Flags().SetInterspersed(c.Interspersed)
	return cc
}
