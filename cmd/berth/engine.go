package main

import "github.com/spf13/cobra"

// engineCommands drive berth's engine objects directly, as the docker CLI's
// image, container, volume and network commands do, plus the runc-like
// runtime surface and the daemon itself.
func engineCommands(opts *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newImageCommand(opts),
		newLoginCommand(opts),
		newLogoutCommand(opts),
		newContainerCommand(opts),
		newVolumeCommand(opts),
		newNetworkCommand(opts),
		newRuntimeCommand(opts),
		newDaemonCommand(opts),
	}
}

// group makes a parent command whose children do the work; run alone it
// shows its help.
func group(use, short string, children ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	c.AddCommand(children...)
	return c
}
