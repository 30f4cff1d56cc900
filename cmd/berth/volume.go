package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/volume"
)

// newVolumeCommand is `berth volume`: docker's volume commands.
func newVolumeCommand(opts *globalOptions) *cobra.Command {
	return group("volume", "Manage volumes",
		newVolumeCreateCommand(opts),
		newVolumeListCommand(opts),
		newVolumeInspectCommand(opts),
		newVolumeRemoveCommand(opts),
		newVolumePruneCommand(opts),
	)
}

func volumes(cmd *cobra.Command, opts *globalOptions) (*api.VolumeClient, func(), error) {
	c, err := connect(cmd.Context(), opts)
	if err != nil {
		return nil, nil, err
	}
	return c.Volumes(), c.Close, nil
}

func newVolumeCreateCommand(opts *globalOptions) *cobra.Command {
	var name, driver string
	var labels, driverOpts []string
	cmd := &cobra.Command{
		Use:     "create [OPTIONS] [VOLUME]",
		Short:   "Create a volume",
		Example: "  berth volume create data\n  berth volume create -o type=none -o o=bind -o device=/srv/data shared",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: either specify --name or provide positional arg, not both")
				}
				name = args[0]
			}
			l, err := keyValues(labels)
			if err != nil {
				return err
			}
			o, err := keyValues(driverOpts)
			if err != nil {
				return err
			}
			vc, done, err := volumes(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			v, err := vc.Create(cmd.Context(), volume.CreateOptions{Name: name, Driver: driver, Labels: l, Options: o})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "Specify volume name")
	_ = f.MarkHidden("name")
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringArrayVarP(&labels, "label", "l", nil, "Set metadata for a volume")
	f.StringArrayVarP(&driverOpts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

// volumeRow is one line of `volume ls`, with docker's JSON names.
type volumeRow struct {
	Driver     string `json:"Driver"`
	Labels     string `json:"Labels"`
	Links      string `json:"Links"`
	Mountpoint string `json:"Mountpoint"`
	Name       string `json:"Name"`
	Scope      string `json:"Scope"`
	Size       string `json:"Size"`
}

func newVolumeListCommand(opts *globalOptions) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lo := api.VolumeListOptions{Labels: map[string]string{}}
			var names, drivers []string
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				switch {
				case !ok:
					return fmt.Errorf("--filter %q: want KEY=VALUE", f)
				case k == "label":
					lk, lv, _ := strings.Cut(v, "=")
					lo.Labels[lk] = lv
				case k == "dangling":
					b, err := strconv.ParseBool(v)
					if err != nil {
						return fmt.Errorf("--filter %q: dangling takes true or false", f)
					}
					lo.Dangling = &b
				case k == "name":
					names = append(names, v)
				case k == "driver":
					drivers = append(drivers, v)
				default:
					return fmt.Errorf("--filter %q: supported filters are dangling, driver, label and name", f)
				}
			}
			vc, done, err := volumes(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			vols, err := vc.List(cmd.Context(), lo)
			if err != nil {
				return err
			}
			vols = slices.DeleteFunc(vols, func(v api.VolumeListEntry) bool {
				return (len(names) > 0 && !containsAny(v.Name, names)) || (len(drivers) > 0 && !slices.Contains(drivers, v.Driver))
			})
			return writeVolumes(cmd.OutOrStdout(), format, quiet, vols)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	f.StringVar(&format, "format", "", "Format output: table, json or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (dangling=true, label=KEY[=VALUE], name=NAME)")
	return cmd
}

// writeVolumes prints vols as `volume ls` does: their names with quiet,
// else a table, JSON or a template (format).
func writeVolumes(out io.Writer, format string, quiet bool, vols []api.VolumeListEntry) error {
	if quiet {
		for _, v := range vols {
			fmt.Fprintln(out, v.Name)
		}
		return nil
	}
	rows := make([]volumeRow, 0, len(vols))
	for _, v := range vols {
		rows = append(rows, volumeRow{
			Driver: v.Driver, Labels: joinLabels(v.Labels), Links: fmt.Sprint(len(v.UsedBy)),
			Mountpoint: v.Mountpoint, Name: v.Name, Scope: v.Scope, Size: "N/A",
		})
	}
	return listFormat(out, format, rows, func(w io.Writer, rows []volumeRow) error {
		tw := newTable(w)
		fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\n", r.Driver, r.Name)
		}
		return tw.Flush()
	})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func joinLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func newVolumeInspectCommand(opts *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vc, done, err := volumes(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			var found []volume.Volume
			var failed error
			for _, name := range args {
				v, err := vc.Inspect(cmd.Context(), name)
				if err != nil {
					failed = err
					continue
				}
				found = append(found, v)
			}
			if err := printInspect(cmd.OutOrStdout(), format, found); err != nil {
				return err
			}
			return failed
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a Go template, or json")
	return cmd
}

func newVolumeRemoveCommand(opts *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vc, done, err := volumes(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			return eachArg(cmd, args, func(name string) error { return vc.Remove(cmd.Context(), name, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(opts *globalOptions) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := labelFilters(filters)
			if err != nil {
				return err
			}
			if !force {
				what := "anonymous local volumes"
				if all {
					what = "all local volumes"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "WARNING! This will remove %s not used by at least one container.\nAre you sure you want to continue? [y/N] ", what)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			vc, done, err := volumes(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			rep, err := vc.Prune(cmd.Context(), labels, all)
			out := cmd.OutOrStdout()
			if len(rep.VolumesDeleted) > 0 {
				fmt.Fprintln(out, "Deleted Volumes:")
				for _, name := range rep.VolumesDeleted {
					fmt.Fprintln(out, name)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.SpaceReclaimed))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, "Provide filter values (label=KEY[=VALUE])")
	return cmd
}
