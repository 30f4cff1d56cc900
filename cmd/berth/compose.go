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
		newBuildCommand(opts),
		newPullCommand(opts),
		newPushCommand(opts),
		newConfigCommand(opts),
		newCreateCommand(opts),
		newStartCommand(opts),
		newStopCommand(opts),
		newRestartCommand(opts),
		newKillCommand(opts),
		newRmCommand(opts),
		newPauseCommand(opts, true),
		newPauseCommand(opts, false),
		stub("top [SERVICE...]", "Display the running processes", reconcileEngine),
		newPortCommand(opts),
		newEventsCommand(opts),
		newImagesCommand(opts),
		newLsCommand(opts),
		stub("cp SRC DST", "Copy files between a service container and the local filesystem", reconcileEngine),
		newWaitCommand(opts),
		stub("stats [SERVICE]", "Display a live stream of container resource usage", reconcileEngine),
		newWatchCommand(opts),
		newVersionCommand(opts),
	}
}
