package main

import (
	"fmt"

	"github.com/berth-dev/berth/daemon"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command takes, as docker compose has them
// plus berth's --root and --host for the engine.
type globalOptions struct {
	Files            []string
	ProjectName      string
	ProjectDirectory string
	Profiles         []string
	EnvFiles         []string
	Root             string
	Host             string
	Progress         string
}

const (
	defaultRoot = daemon.DefaultRoot
	defaultHost = daemon.DefaultHost
)

func newRootCommand() *cobra.Command {
	opts := &globalOptions{}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run Compose projects on berth's own container engine",
		Long:          "berth runs the services of a compose.yaml on one Linux host, with its own container engine.\nIt takes the commands, flags and files of docker compose.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Project flags are the root's own, as in docker compose: they go
		// before the command (berth -f x.yaml logs -f), so subcommands may
		// reuse their letters (-f for --follow, -p for --publish).
		TraverseChildren: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	pf := root.Flags()
	pf.StringArrayVarP(&opts.Files, "file", "f", nil, "Compose configuration files")
	pf.StringVarP(&opts.ProjectName, "project-name", "p", "", "Project name")
	pf.StringVar(&opts.ProjectDirectory, "project-directory", "", "Alternate working directory (default: the directory of the first Compose file)")
	pf.StringArrayVar(&opts.Profiles, "profile", nil, "Profiles to enable")
	pf.StringArrayVar(&opts.EnvFiles, "env-file", nil, "Alternate environment files")
	f := root.PersistentFlags()
	f.StringVar(&opts.Root, "root", envOr("BERTH_ROOT", defaultRoot), "State root of the engine")
	f.StringVarP(&opts.Host, "host", "H", envOr("BERTH_HOST", defaultHost), "Daemon socket to connect to")
	f.StringVar(&opts.Progress, "progress", "auto", "Progress output: auto, tty, plain, json or quiet")

	root.AddGroup(
		&cobra.Group{ID: "compose", Title: "Compose commands:"},
		&cobra.Group{ID: "engine", Title: "Engine commands:"},
	)
	for _, c := range composeCommands(opts) {
		c.GroupID = "compose"
		root.AddCommand(c)
	}
	for _, c := range engineCommands(opts) {
		c.GroupID = "engine"
		root.AddCommand(c)
	}
	applyExamples(root)
	return root
}

// notYet is the error of a command whose engine part does not exist yet:
// it says so and the command exits non-zero, rather than pretend to work.
func notYet(command, missingPart string) error {
	return fmt.Errorf("%s: not implemented yet (needs %s)", command, missingPart)
}
