package main

import "github.com/spf13/cobra"

// composeCommands is the command tree of docker compose. Each command's
// constructor lives in the file of the part that implements it.
func composeCommands(opts *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newUpCommand(opts),
		newDownCommand(opts),
		newPsCommand(opts),
		newLogsCommand(opts),
		newExecCommand(opts),
		newAttachCommand(opts),
		newRunCommand(opts),
		newBuildCommand(opts),
		newPullCommand(opts),
		newPushCommand(opts),
		newConfigCommand(opts),
		newCreateCommand(opts),
		newStartCommand(opts),
		newStopCommand(opts),
		newRestartCommand(opts),
		newScaleCommand(opts),
		newKillCommand(opts),
		newRmCommand(opts),
		newPauseCommand(opts, true),
		newPauseCommand(opts, false),
		newTopCommand(opts),
		newPortCommand(opts),
		newEventsCommand(opts),
		newImagesCommand(opts),
		newVolumesCommand(opts),
		newLsCommand(opts),
		newCpCommand(opts),
		newCommitCommand(opts),
		newExportCommand(opts),
		newWaitCommand(opts),
		newStatsCommand(opts),
		newWatchCommand(opts),
		newVersionCommand(opts),
	}
}
