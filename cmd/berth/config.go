package main

import "github.com/spf13/cobra"

func newConfigCommand(opts *globalOptions) *cobra.Command {
	return stub("config", "Parse, resolve and render the Compose file in canonical format", "the manifest loader")
}
