package main

import "github.com/spf13/cobra"

const reconcileEngine = "the reconcile engine"

// composeCommands is the command tree of docker compose. Each command's
// constructor lives in the file of the part that implements it.
func composeCommands(opts *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newUpCommand(opts),
		newDownCommand(opts),
		newPsCommand(opts),
		newLogsCommand(opts),
		stub("exec SERVICE COMMAND [ARGS...]", "Execute a command in a running container", reconcileEngine),
		stub("run SERVICE [COMMAND] [ARGS...]", "Run a one-off command on a service", reconcileEngine),
		stub("build [SERVICE...]", "Build or rebuild services", "the image builder"),
		stub("pull [SERVICE...]", "Pull service images", reconcileEngine),
		stub("push [SERVICE...]", "Push service images", reconcileEngine),
		newConfigCommand(opts),
		stub("create [SERVICE...]", "Create containers for a service", reconcileEngine),
		stub("start [SERVICE...]", "Start services", reconcileEngine),
		stub("stop [SERVICE...]", "Stop services", reconcileEngine),
		stub("restart [SERVICE...]", "Restart service containers", reconcileEngine),
		stub("kill [SERVICE...]", "Force stop service containers", reconcileEngine),
		stub("rm [SERVICE...]", "Remove stopped service containers", reconcileEngine),
		stub("pause [SERVICE...]", "Pause services", reconcileEngine),
		stub("unpause [SERVICE...]", "Unpause services", reconcileEngine),
		stub("top [SERVICE...]", "Display the running processes", reconcileEngine),
		stub("port SERVICE PRIVATE_PORT", "Print the public port for a port binding", reconcileEngine),
		stub("events [SERVICE...]", "Receive real time events from containers", reconcileEngine),
		stub("images [SERVICE...]", "List images used by the created containers", reconcileEngine),
		newLsCommand(opts),
		stub("cp SRC DST", "Copy files between a service container and the local filesystem", reconcileEngine),
		stub("wait SERVICE...", "Block until containers of all (or specified) services stop", reconcileEngine),
		stub("stats [SERVICE]", "Display a live stream of container resource usage", reconcileEngine),
		stub("watch [SERVICE...]", "Keep the project converged with its files", "the watch reconciler"),
		newVersionCommand(opts),
	}
}
