package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

type versionOptions struct {
	format string
	short  bool
}

func newVersionCommand(opts *globalOptions) *cobra.Command {
	vo := &versionOptions{}
	c := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(cmd, opts, vo)
		},
	}
	c.Flags().StringVar(&vo.format, "format", "pretty", "Format the output: pretty or json")
	c.Flags().BoolVar(&vo.short, "short", false, "Show only the client's version number")
	return c
}

type versionReport struct {
	Client api.VersionInfo  `json:"Client"`
	Server *api.VersionInfo `json:"Server"`
}

func runVersion(cmd *cobra.Command, opts *globalOptions, vo *versionOptions) error {
	out := cmd.OutOrStdout()
	if vo.short {
		fmt.Fprintln(out, version)
		return nil
	}
	rep := versionReport{Client: api.VersionInfo{
		Version: version, APIVersion: api.Version, GoVersion: runtime.Version(),
		Os: runtime.GOOS, Arch: runtime.GOARCH,
	}}
	c, err := connect(cmd.Context(), opts)
	if err == nil {
		defer c.Close()
		var sv api.VersionInfo
		if sv, err = c.Version(cmd.Context()); err == nil {
			rep.Server = &sv
		}
	}
	switch vo.format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(rep); encErr != nil {
			return encErr
		}
	case "pretty", "":
		printVersion(out, "Client", &rep.Client)
		if rep.Server != nil {
			fmt.Fprintln(out)
			printVersion(out, "Server", rep.Server)
		}
	default:
		return fmt.Errorf("version: unknown --format %q (want pretty or json)", vo.format)
	}
	return err
}

func printVersion(w io.Writer, side string, v *api.VersionInfo) {
	fmt.Fprintf(w, "%s:\n", side)
	fmt.Fprintf(w, " Version:     %s\n", v.Version)
	fmt.Fprintf(w, " API version: %s\n", v.APIVersion)
	fmt.Fprintf(w, " Go version:  %s\n", v.GoVersion)
	fmt.Fprintf(w, " OS/Arch:     %s/%s\n", v.Os, v.Arch)
	if v.Root != "" {
		fmt.Fprintf(w, " Root:        %s\n", v.Root)
	}
}
