package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/reconcile"
)

type psOptions struct {
	all, services, quiet, noTrunc bool
	orphans                       bool
	format                        string
	status, filter                []string
}

func newPsCommand(opts *globalOptions) *cobra.Command {
	po := &psOptions{}
	c := &cobra.Command{
		Use:     "ps [OPTIONS] [SERVICE...]",
		Short:   "List containers",
		Example: "  berth ps                  # running containers of the project\n  berth ps -a --format json # all of them, as JSON lines",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd, opts, po, args)
		},
	}
	f := c.Flags()
	f.BoolVarP(&po.all, "all", "a", false, "Show all stopped containers (including those created by the run command)")
	f.BoolVar(&po.services, "services", false, "Display services")
	f.BoolVarP(&po.quiet, "quiet", "q", false, "Only display IDs")
	f.BoolVar(&po.noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&po.format, "format", "table", "Format output using a custom template: 'table' or 'json'")
	f.StringArrayVar(&po.status, "status", nil, "Filter services by status (created, restarting, running, removing, paused, exited, dead)")
	f.StringArrayVar(&po.filter, "filter", nil, "Filter services by a property (supported filters: status)")
	f.BoolVar(&po.orphans, "orphans", true, "Include orphaned services (not declared by project)")
	return c
}

// psEntry is one container as `ps --format json` shows it (docker
// compose's field names).
type psEntry struct {
	ID         string            `json:"ID"`
	Name       string            `json:"Name"`
	Names      string            `json:"Names"`
	Image      string            `json:"Image"`
	Command    string            `json:"Command"`
	Project    string            `json:"Project"`
	Service    string            `json:"Service"`
	Created    int64             `json:"Created"`
	CreatedAt  string            `json:"CreatedAt"`
	RunningFor string            `json:"RunningFor"`
	State      string            `json:"State"`
	Status     string            `json:"Status"`
	Health     string            `json:"Health"`
	ExitCode   int               `json:"ExitCode"`
	Publishers []publisher       `json:"Publishers"`
	Ports      string            `json:"Ports"`
	Networks   string            `json:"Networks"`
	Labels     map[string]string `json:"Labels"`
}

type publisher struct {
	URL           string `json:"URL"`
	TargetPort    uint16 `json:"TargetPort"`
	PublishedPort uint16 `json:"PublishedPort"`
	Protocol      string `json:"Protocol"`
}

func runPs(cmd *cobra.Command, opts *globalOptions, po *psOptions, services []string) error {
	ctx := cmd.Context()
	s, err := openSession(ctx, opts, true)
	if err != nil {
		return err
	}
	defer s.close()
	statuses := slices.Clone(po.status)
	for _, f := range po.filter {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "status" {
			return fmt.Errorf("--filter %q: only status=STATUS is supported", f)
		}
		statuses = append(statuses, v)
	}
	cs, err := s.containers(ctx, po.all || len(statuses) > 0, services)
	if err != nil {
		return err
	}
	if len(statuses) > 0 {
		cs = slices.DeleteFunc(cs, func(c container.Container) bool { return !slices.Contains(statuses, string(c.State.Status)) })
	}
	if !po.orphans && s.project != nil {
		cs = slices.DeleteFunc(cs, func(c container.Container) bool {
			_, declared := s.project.Services[c.Config.Labels[reconcile.LabelService]]
			return !declared
		})
	}
	if !po.all {
		// One-off containers (berth run) only with --all, as in compose.
		cs = slices.DeleteFunc(cs, func(c container.Container) bool {
			return c.Config.Labels[reconcile.LabelOneOff] == "True" && len(statuses) == 0
		})
	}
	out := cmd.OutOrStdout()
	switch {
	case po.services:
		seen := map[string]bool{}
		for _, c := range cs {
			if svc := c.Config.Labels[reconcile.LabelService]; !seen[svc] {
				seen[svc] = true
				fmt.Fprintln(out, svc)
			}
		}
		return nil
	case po.quiet:
		for _, c := range cs {
			fmt.Fprintln(out, c.ID)
		}
		return nil
	}
	now := time.Now()
	entries := make([]psEntry, 0, len(cs))
	for _, c := range cs {
		entries = append(entries, toPsEntry(c, now, po.noTrunc))
	}
	switch po.format {
	case "json":
		// One object per line, as docker compose prints them.
		enc := json.NewEncoder(out)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case "table", "":
		tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Image, e.Command, e.Service, e.RunningFor+" ago", e.Status, e.Ports)
		}
		return tw.Flush()
	}
	return fmt.Errorf("--format %q: want table or json", po.format)
}

func toPsEntry(c container.Container, now time.Time, noTrunc bool) psEntry {
	l := c.Config.Labels
	health := ""
	if c.State.Health != nil {
		health = c.State.Health.Status
	}
	var pubs []publisher
	for _, p := range c.Network.Ports {
		pubs = append(pubs, publisher{URL: p.HostIP, TargetPort: p.ContainerPort, PublishedPort: p.HostPort, Protocol: p.Protocol})
	}
	if pubs == nil {
		pubs = []publisher{}
	}
	var nets []string
	nets = append(nets, c.Network.Order...)
	return psEntry{
		ID: c.ID, Name: c.Name, Names: c.Name, Image: c.Config.Image, Command: commandText(c, noTrunc),
		Project: l[reconcile.LabelProject], Service: l[reconcile.LabelService],
		Created: c.Created.Unix(), CreatedAt: c.Created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: humanDuration(now.Sub(c.Created)), State: string(c.State.Status), Status: statusText(c, now),
		Health: health, ExitCode: c.State.ExitCode, Publishers: pubs, Ports: portsText(c),
		Networks: strings.Join(nets, ","), Labels: l,
	}
}

type lsOptions struct {
	all, quiet bool
	format     string
}

func newLsCommand(opts *globalOptions) *cobra.Command {
	lo := &lsOptions{}
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Short:   "List running compose projects",
		Example: "  berth ls -a     # every project with containers, running or not",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := connect(ctx, opts)
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := daemon.Projects(c).List(ctx, lo.all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case lo.quiet:
				for _, p := range list {
					fmt.Fprintln(out, p.Name)
				}
			case lo.format == "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			case lo.format == "table" || lo.format == "":
				tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
				for _, p := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, p.ConfigFiles)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("--format %q: want table or json", lo.format)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&lo.all, "all", "a", false, "Show all stopped Compose projects")
	c.Flags().BoolVarP(&lo.quiet, "quiet", "q", false, "Only display project names")
	c.Flags().StringVar(&lo.format, "format", "table", "Format the output. Values: [table | json]")
	return c
}
