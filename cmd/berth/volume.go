package main

import "github.com/spf13/cobra"

const volumeEngine = "the volume engine"

func newVolumeCommand(opts *globalOptions) *cobra.Command {
	return group("volume", "Manage volumes",
		stub("create [NAME]", "Create a volume", volumeEngine),
		stub("ls", "List volumes", volumeEngine),
		stub("inspect VOLUME...", "Show details of volumes", volumeEngine),
		stub("rm VOLUME...", "Remove volumes", volumeEngine),
		stub("prune", "Remove unused volumes", volumeEngine),
	)
}
