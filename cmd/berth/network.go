package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/network"
)

func newNetworkCommand(opts *globalOptions) *cobra.Command {
	var (
		create      network.CreateOptions
		subnet      string
		gateway     string
		ipRange     string
		driverOpts  []string
		labels      []string
		format      string
		quiet       bool
		listFilters []string
	)
	client := func(cmd *cobra.Command) (*api.Client, error) { return connect(cmd.Context(), opts) }

	createCmd := &cobra.Command{
		Use:     "create [OPTIONS] NETWORK",
		Short:   "Create a network",
		Example: "  berth network create --subnet 10.99.0.0/24 backend",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			create.Name = args[0]
			if subnet != "" || gateway != "" || ipRange != "" {
				create.IPAM = []network.IPAMConfig{{Subnet: subnet, Gateway: gateway, IPRange: ipRange}}
			}
			var err2 error
			if create.Options, err2 = keyValues(driverOpts); err2 != nil {
				return err2
			}
			if create.Labels, err2 = keyValues(labels); err2 != nil {
				return err2
			}
			n, err := c.Networks().Create(cmd.Context(), create)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	f := createCmd.Flags()
	f.StringVarP(&create.Driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.BoolVar(&create.Internal, "internal", false, "Restrict external access to the network")
	f.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	f.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	f.StringVar(&ipRange, "ip-range", "", "Allocate container ip from a sub-range")
	f.StringArrayVarP(&driverOpts, "opt", "o", nil, "Set driver specific options")
	f.StringArrayVar(&labels, "label", nil, "Set metadata on a network")

	lsCmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			sel, err := labelFilters(listFilters)
			if err != nil {
				return err
			}
			list, err := c.Networks().List(cmd.Context(), sel)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, n := range list {
					fmt.Fprintln(out, shortID(n.ID))
				}
				return nil
			case format == "json":
				enc := json.NewEncoder(out)
				for _, n := range list {
					if err := enc.Encode(n); err != nil {
						return err
					}
				}
				return nil
			case format == "table" || format == "":
				tw := newTable(out)
				fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE\tSUBNET")
				for _, n := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\tlocal\t%s\n", shortID(n.ID), n.Name, n.Driver, n.Subnet)
				}
				return tw.Flush()
			}
			return fmt.Errorf("--format %q: want table or json", format)
		},
	}
	lsCmd.Flags().StringVar(&format, "format", "table", "Format output: table or json")
	lsCmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	lsCmd.Flags().StringArrayVarP(&listFilters, "filter", "f", nil, "Provide filter values (e.g. 'label=com.docker.compose.project=app')")

	inspectCmd := &cobra.Command{
		Use:   "inspect NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var out []api.NetworkDetails
			for _, name := range args {
				d, err := c.Networks().Inspect(cmd.Context(), name)
				if err != nil {
					return err
				}
				out = append(out, d)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "    ")
			return enc.Encode(out)
		},
	}
	rmCmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return eachArg(cmd, args, func(name string) error { return c.Networks().Remove(cmd.Context(), name) })
		},
	}
	pruneCmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := c.Networks().List(cmd.Context(), nil)
			if err != nil {
				return err
			}
			var removed []string
			for _, n := range list {
				d, err := c.Networks().Inspect(cmd.Context(), n.Name)
				if err != nil || len(d.Containers) > 0 {
					continue
				}
				if c.Networks().Remove(cmd.Context(), n.Name) == nil {
					removed = append(removed, n.Name)
				}
			}
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:\n"+strings.Join(removed, "\n"))
			}
			return nil
		},
	}
	return group("network", "Manage networks", createCmd, lsCmd, inspectCmd, rmCmd, pruneCmd)
}

// keyValues reads KEY=VALUE flags into a map.
func keyValues(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// labelFilters reads --filter label=KEY[=VALUE] flags into a label selector,
// refusing any other filter.
func labelFilters(filters []string) (map[string]string, error) {
	sel := map[string]string{}
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		if k != "label" {
			return nil, fmt.Errorf("--filter %q: only label=KEY[=VALUE] is supported", f)
		}
		lk, lv, _ := strings.Cut(v, "=")
		sel[lk] = lv
	}
	return sel, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
