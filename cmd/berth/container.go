package main

import "github.com/spf13/cobra"

const containerEngine = "the container engine"

func newContainerCommand(opts *globalOptions) *cobra.Command {
	var children []*cobra.Command
	for _, c := range [][2]string{
		{"create IMAGE [COMMAND] [ARG...]", "Create a container"},
		{"start CONTAINER...", "Start containers"},
		{"stop CONTAINER...", "Stop containers"},
		{"kill CONTAINER...", "Kill containers"},
		{"rm CONTAINER...", "Remove containers"},
		{"ls", "List containers"},
		{"inspect CONTAINER...", "Show details of containers"},
		{"logs CONTAINER", "Fetch the logs of a container"},
		{"attach CONTAINER", "Attach to a running container"},
		{"exec CONTAINER COMMAND [ARG...]", "Run a command in a running container"},
		{"run IMAGE [COMMAND] [ARG...]", "Create and run a container"},
		{"wait CONTAINER...", "Wait for containers to stop and print their exit codes"},
		{"top CONTAINER", "Display the running processes of a container"},
		{"stats [CONTAINER...]", "Display resource usage of containers"},
	} {
		children = append(children, stub(c[0], c[1], containerEngine))
	}
	children = append(children, newContainerDiffCommand(opts), newContainerCommitCommand(opts))
	return group("container", "Manage containers", children...)
}
