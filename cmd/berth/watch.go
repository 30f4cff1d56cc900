package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/reconcile"
)

type watchOptions struct {
	detach bool
	resync time.Duration
	format string
}

func newWatchCommand(opts *globalOptions) *cobra.Command {
	wo := &watchOptions{}
	c := &cobra.Command{
		Use:   "watch [OPTIONS] [SERVICE...]",
		Short: "Keep the project converged with its files",
		Long: "Keep the project converged with its files, GitOps-style: the daemon watches the Compose\n" +
			"files, their env files and the files they include, and after each change (an editor's\n" +
			"save, a git pull or checkout) recreates exactly the services whose configuration changed.\n" +
			"A version of the files that does not load changes nothing; the error is reported.\n" +
			"Containers stopped, killed or removed behind berth's back are put back.\n\n" +
			"Attached, Ctrl-C ends the watch; with -d it runs in the daemon, survives daemon restarts,\n" +
			"and `berth watch stop` ends it.",
		Example: "  berth watch              # follow the files, print each change applied\n" +
			"  berth watch -d           # keep watching in the daemon\n" +
			"  berth watch ls           # the watches the daemon runs\n" +
			"  berth watch stop myapp   # end one",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd, opts, wo, args)
		},
	}
	c.Flags().BoolVarP(&wo.detach, "detach", "d", false, "Register the watch with the daemon and return")
	c.Flags().DurationVar(&wo.resync, "resync", 30*time.Second, "Period of the drift check when nothing changes")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the watches the daemon runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			client, err := connect(ctx, opts)
			if err != nil {
				return err
			}
			defer client.Close()
			list, err := daemon.Projects(client).Watches(ctx)
			if err != nil {
				return err
			}
			if wo.format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tDIRECTORY\tSINCE\tLAST")
			for _, w := range list {
				last := "-"
				if w.LastEvent != nil {
					last = w.LastEvent.Kind + ": " + w.LastEvent.Text
				}
				fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\n", w.Project, w.Dirs[0], humanDuration(time.Since(w.Since)), last)
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&wo.format, "format", "table", "Format the output: table or json")
	stop := &cobra.Command{
		Use:   "stop [PROJECT]",
		Short: "End a watch (the project's containers keep running)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := opts.ProjectName
			if len(args) == 1 {
				name = args[0]
			}
			if name == "" {
				p, err := loadProject(ctx, opts, nil)
				if err != nil {
					return err
				}
				name = p.Name
			}
			client, err := connect(ctx, opts)
			if err != nil {
				return err
			}
			defer client.Close()
			return daemon.Projects(client).StopWatch(ctx, name)
		},
	}
	c.AddCommand(ls, stop)
	return c
}

func runWatch(cmd *cobra.Command, opts *globalOptions, wo *watchOptions, services []string) error {
	ctx := cmd.Context()
	req, err := watchRequest(ctx, opts, services, wo)
	if err != nil {
		return err
	}
	req.Attached = !wo.detach
	client, err := connect(ctx, opts)
	if err != nil {
		return err
	}
	defer client.Close()
	pc := daemon.Projects(client)
	out := cmd.OutOrStdout()
	if wo.detach {
		if _, err := pc.Watch(ctx, req); err != nil {
			return err
		}
		fmt.Fprintf(out, "Watching project %s (berth watch stop %s ends it)\n", req.Project, req.Project)
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	live := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- pc.Events(ctx, req.Project, func() { close(live) }, func(ev reconcile.WatchEvent) {
			fmt.Fprintf(out, "%s %s %s: %s\n", ev.Time.Local().Format("15:04:05"), ev.Trigger, ev.Kind, ev.Text)
		})
	}()
	select {
	case <-live:
	case err := <-errc:
		return err
	}
	if _, err := pc.Watch(ctx, req); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Watching %s; Ctrl-C ends the watch\n", req.Project)
	select {
	case <-sigs:
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return pc.StopWatch(context.WithoutCancel(ctx), req.Project)
}

// watchRequest captures what the daemon needs to reload the files as this
// CLI would: the flags, the environment, the directory, made absolute.
func watchRequest(ctx context.Context, opts *globalOptions, services []string, wo *watchOptions) (daemon.WatchRequest, error) {
	p, err := loadProject(ctx, opts, nil)
	if err != nil {
		return daemon.WatchRequest{}, err
	}
	load := manifestOptions(ctx, opts, nil)
	load.Stdin, load.Warn = nil, nil
	if slices.Contains(load.Files, "-") {
		return daemon.WatchRequest{}, errors.New("watch: a Compose file from stdin (-f -) cannot be watched")
	}
	wd, err := os.Getwd()
	if err != nil {
		return daemon.WatchRequest{}, err
	}
	if load.WorkDir == "" {
		load.WorkDir = wd
	}
	for i, f := range load.Files {
		if !filepath.IsAbs(f) {
			load.Files[i] = filepath.Join(load.WorkDir, f)
		}
	}
	if load.ProjectDirectory != "" && !filepath.IsAbs(load.ProjectDirectory) {
		load.ProjectDirectory = filepath.Join(load.WorkDir, load.ProjectDirectory)
	}
	for i, f := range load.EnvFiles {
		if !filepath.IsAbs(f) {
			load.EnvFiles[i] = filepath.Join(load.WorkDir, f)
		}
	}
	dirs := []string{p.WorkingDir}
	files := append(slices.Clone(p.ComposeFiles), p.EnvFiles...)
	for _, f := range files {
		if d := filepath.Dir(f); !slices.Contains(dirs, d) && !isUnder(d, p.WorkingDir) {
			dirs = append(dirs, d)
		}
	}
	return daemon.WatchRequest{
		Load: load, Project: p.Name, Dirs: dirs, Files: files, Resync: wo.resync,
		Options: reconcile.Options{Services: services},
	}, nil
}

func isUnder(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != "../")
}
