package main

import "github.com/spf13/cobra"

const networkEngine = "the network engine"

func newNetworkCommand(opts *globalOptions) *cobra.Command {
	return group("network", "Manage networks",
		stub("create NAME", "Create a network", networkEngine),
		stub("ls", "List networks", networkEngine),
		stub("inspect NETWORK...", "Show details of networks", networkEngine),
		stub("rm NETWORK...", "Remove networks", networkEngine),
		stub("prune", "Remove unused networks", networkEngine),
	)
}
