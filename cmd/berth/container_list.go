package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
)

// containerRow is one line of `container ls`, with docker's JSON names.
type containerRow struct {
	Command      string `json:"Command"`
	CreatedAt    string `json:"CreatedAt"`
	ID           string `json:"ID"`
	Image        string `json:"Image"`
	Labels       string `json:"Labels"`
	LocalVolumes string `json:"LocalVolumes"`
	Mounts       string `json:"Mounts"`
	Names        string `json:"Names"`
	Networks     string `json:"Networks"`
	Ports        string `json:"Ports"`
	RunningFor   string `json:"RunningFor"`
	Size         string `json:"Size"`
	State        string `json:"State"`
	Status       string `json:"Status"`
}

func toContainerRow(c container.Container, now time.Time, noTrunc bool) containerRow {
	var labels, mounts []string
	for k, v := range c.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	local := 0
	for _, m := range c.Config.Mounts {
		name := m.Source
		if m.Type == container.MountVolume {
			if name == "" {
				name = c.AnonymousVolumes[m.Target]
			}
			local++
		}
		if !noTrunc && len(name) > 15 {
			name = name[:15] + "…"
		}
		mounts = append(mounts, name)
	}
	id := c.ID
	if !noTrunc {
		id = shortContainerID(id)
	}
	return containerRow{
		Command: commandText(c, noTrunc), CreatedAt: dockerTime(c.Created), ID: id, Image: c.Config.Image,
		Labels: strings.Join(labels, ","), LocalVolumes: fmt.Sprint(local), Mounts: strings.Join(mounts, ","),
		Names: c.Name, Networks: strings.Join(c.Network.Order, ","), Ports: portsText(c),
		RunningFor: humanDuration(now.Sub(c.Created)) + " ago", Size: "N/A",
		State: string(c.State.Status), Status: statusText(c, now),
	}
}

func newContainerListCommand(opts *globalOptions) *cobra.Command {
	var all, quiet, noTrunc, latest bool
	var last int
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"ps", "list"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lo := container.ListOptions{All: all || last > 0 || latest, Labels: map[string]string{}}
			var names, statuses []string
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				switch {
				case !ok:
					return fmt.Errorf("--filter %q: want KEY=VALUE", f)
				case k == "label":
					lk, lv, _ := strings.Cut(v, "=")
					lo.Labels[lk] = lv
				case k == "name":
					names = append(names, v)
				case k == "status":
					statuses = append(statuses, v)
					lo.All = true
				case k == "id":
					names = append(names, v)
				default:
					return fmt.Errorf("--filter %q: supported filters are label, name, id and status", f)
				}
			}
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			cs, err := cc.List(ctx, lo)
			if err != nil {
				return err
			}
			cs = slices.DeleteFunc(cs, func(c container.Container) bool {
				if len(statuses) > 0 && !slices.Contains(statuses, string(c.State.Status)) {
					return true
				}
				if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool {
					return strings.Contains(c.Name, n) || strings.HasPrefix(c.ID, n)
				}) {
					return true
				}
				return false
			})
			// Newest first, as docker lists them.
			sort.SliceStable(cs, func(i, j int) bool { return cs[i].Created.After(cs[j].Created) })
			if latest {
				last = 1
			}
			if last > 0 && len(cs) > last {
				cs = cs[:last]
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, c := range cs {
					if noTrunc {
						fmt.Fprintln(out, c.ID)
					} else {
						fmt.Fprintln(out, shortContainerID(c.ID))
					}
				}
				return nil
			}
			now := time.Now()
			rows := make([]containerRow, 0, len(cs))
			for _, c := range cs {
				rows = append(rows, toContainerRow(c, now, noTrunc))
			}
			return listFormat(out, format, rows, func(w io.Writer, rows []containerRow) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names)
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.IntVarP(&last, "last", "n", 0, "Show n last created containers (includes all states)")
	f.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.StringVar(&format, "format", "", "Format output: table, json or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output (label=KEY[=VALUE], name=NAME, id=ID, status=STATUS)")
	return cmd
}

func newContainerLogsCommand(opts *globalOptions) *cobra.Command {
	var lo api.LogsOptions
	var timestamps bool
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			return cc.Logs(cmd.Context(), args[0], lo, func(e api.LogEntry) error {
				w := out
				if e.Stream == "stderr" {
					w = errOut
				}
				line := e.Line
				if timestamps {
					line = e.Time.Format(time.RFC3339Nano) + " " + line
				}
				_, err := io.WriteString(w, line)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&lo.Follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVarP(&lo.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.StringVar(&lo.Since, "since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVar(&lo.Until, "until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return cmd
}

func newContainerTopCommand(opts *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			t, err := cc.Top(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			rows := make([]map[string]string, 0, len(t.Processes))
			for _, p := range t.Processes {
				row := map[string]string{}
				for i, title := range t.Titles {
					if i < len(p) {
						row[title] = p[i]
					}
				}
				rows = append(rows, row)
			}
			return listFormat(cmd.OutOrStdout(), format, rows, func(w io.Writer, _ []map[string]string) error {
				tw := newTable(w)
				fmt.Fprintln(tw, strings.Join(t.Titles, "\t"))
				for _, p := range t.Processes {
					fmt.Fprintln(tw, strings.Join(p, "\t"))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&format, "format", "", "Format output: table or json (one object per process)")
	return cmd
}

// statsRow is one line of `container stats`, with docker's JSON names.
type statsRow struct {
	BlockIO   string `json:"BlockIO"`
	CPUPerc   string `json:"CPUPerc"`
	Container string `json:"Container"`
	ID        string `json:"ID"`
	MemPerc   string `json:"MemPerc"`
	MemUsage  string `json:"MemUsage"`
	Name      string `json:"Name"`
	NetIO     string `json:"NetIO"`
	PIDs      string `json:"PIDs"`
}

func toStatsRow(prev, cur container.Stats) statsRow {
	mem := 0.0
	if cur.MemoryLimit > 0 {
		mem = float64(cur.MemoryUsage) / float64(cur.MemoryLimit) * 100
	}
	binary := func(n uint64) string { return bytesBinary(n) }
	decimal := func(n uint64) string { return humanSize(int64(n)) }
	return statsRow{
		BlockIO:   decimal(cur.BlockRead) + " / " + decimal(cur.BlockWrite),
		CPUPerc:   fmt.Sprintf("%.2f%%", container.CPUPercent(prev, cur)),
		Container: shortContainerID(cur.ID), ID: shortContainerID(cur.ID),
		MemPerc:  fmt.Sprintf("%.2f%%", mem),
		MemUsage: binary(cur.MemoryUsage) + " / " + binary(cur.MemoryLimit),
		Name:     cur.Name, NetIO: decimal(cur.NetRx) + " / " + decimal(cur.NetTx),
		PIDs: fmt.Sprint(cur.Pids),
	}
}

// bytesBinary is a size as docker's stats prints memory: "1.5MiB".
func bytesBinary(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.4g%s", f, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}[i])
}

func newContainerStatsCommand(opts *globalOptions) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cc, done, err := containers(cmd, opts)
			if err != nil {
				return err
			}
			defer done()
			names := args
			if len(names) == 0 {
				cs, err := cc.List(ctx, container.ListOptions{All: all})
				if err != nil {
					return err
				}
				for _, c := range cs {
					if c.State.Status == container.Running || c.State.Status == container.Paused {
						names = append(names, c.ID)
					}
				}
			}
			return showStats(ctx, cmd.OutOrStdout(), cc, names, !noStream, format)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	f.StringVar(&format, "format", "", "Format output: table, json or a Go template")
	return cmd
}

// showStats samples each container (a goroutine each) and prints a table
// of the latest samples: once (two samples a second apart), or every
// second, redrawn in place on a terminal.
func showStats(ctx context.Context, out io.Writer, cc *api.ContainerClient, names []string, stream bool, format string) error {
	type pair struct{ prev, cur container.Stats }
	var mu sync.Mutex
	latest := map[string]*pair{}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cc.Stats(ctx, name, stream, func(st container.Stats) error {
				mu.Lock()
				defer mu.Unlock()
				p := latest[name]
				if p == nil {
					p = &pair{}
					latest[name] = p
				}
				p.prev, p.cur = p.cur, st
				return nil
			})
		}()
	}
	print := func() error {
		mu.Lock()
		rows := make([]statsRow, 0, len(names))
		for _, name := range names {
			if p := latest[name]; p != nil && !p.prev.Read.IsZero() {
				rows = append(rows, toStatsRow(p.prev, p.cur))
			}
		}
		mu.Unlock()
		return listFormat(out, format, rows, func(w io.Writer, rows []statsRow) error {
			tw := newTable(w)
			fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs)
			}
			return tw.Flush()
		})
	}
	if !stream {
		wg.Wait()
		if err := print(); err != nil {
			return err
		}
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	clear := isTerminal(out) && (format == "" || format == "table")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-finished:
			return print()
		case <-tick.C:
		}
		if clear {
			fmt.Fprint(out, "\x1b[2J\x1b[H")
		}
		if err := print(); err != nil {
			return err
		}
	}
}
