package main

import "github.com/spf13/cobra"

const ociRuntime = "the OCI runtime"

func newRuntimeCommand(opts *globalOptions) *cobra.Command {
	return group("runtime", "Drive the OCI runtime on a bundle, as runc does",
		stub("create CONTAINER", "Create a container from a bundle", ociRuntime),
		stub("start CONTAINER", "Start a created container", ociRuntime),
		stub("state CONTAINER", "Print the state of a container", ociRuntime),
		stub("kill CONTAINER [SIGNAL]", "Send a signal to a container's process", ociRuntime),
		stub("delete CONTAINER", "Delete a container", ociRuntime),
		stub("run CONTAINER", "Create and start a container and wait for it", ociRuntime),
	)
}
