package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/reconcile"
)

// serviceOrder groups containers by service, services in dependency order
// (from the files, else from the depends_on labels); reverse for stopping.
func serviceOrder(s *session, cs []container.Container, reverse bool) [][]container.Container {
	byService := map[string][]container.Container{}
	var names []string
	for _, c := range cs {
		svc := c.Config.Labels[reconcile.LabelService]
		if _, ok := byService[svc]; !ok {
			names = append(names, svc)
		}
		byService[svc] = append(byService[svc], c)
	}
	sort.Strings(names)
	deps := map[string][]string{}
	if s.project != nil {
		for name, svc := range s.project.Services {
			for d := range svc.DependsOn {
				deps[name] = append(deps[name], d)
			}
		}
	} else {
		for _, c := range cs {
			for _, part := range strings.Split(c.Config.Labels[reconcile.LabelDependsOn], ",") {
				if d, _, _ := strings.Cut(part, ":"); d != "" {
					deps[c.Config.Labels[reconcile.LabelService]] = append(deps[c.Config.Labels[reconcile.LabelService]], d)
				}
			}
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range deps[n] {
			visit(d)
		}
		if _, ok := byService[n]; ok {
			order = append(order, n)
		}
	}
	for _, n := range names {
		visit(n)
	}
	if reverse {
		slices.Reverse(order)
	}
	out := make([][]container.Container, 0, len(order))
	for _, n := range order {
		out = append(out, byService[n])
	}
	return out
}

// eachContainer runs op on the containers, service by service in order,
// the replicas of a service in parallel, reporting progress; every
// failure is reported, and the others still run.
func eachContainer(ctx context.Context, opts *globalOptions, cmd *cobra.Command, groups [][]container.Container, working, done string, op func(c container.Container) error) error {
	r, err := renderer(opts, cmd.ErrOrStderr(), "Running")
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for _, group := range groups {
		var wg sync.WaitGroup
		groupErrs := make([]error, len(group))
		for i, c := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := "Container " + c.Name
				progress.Emit(r, progress.WorkingEvent(id, working))
				if err := op(c); err != nil {
					progress.Emit(r, progress.ErrorEvent(id, err))
					groupErrs[i] = fmt.Errorf("%s: %w", c.Name, err)
					return
				}
				progress.Emit(r, progress.DoneEvent(id, done))
			}()
		}
		wg.Wait()
		errs = append(errs, groupErrs...)
	}
	return errors.Join(errs...)
}

type opFlags struct {
	timeout, waitTimeout       int
	signal                     string
	force, stop, volumes, wait bool
	noDeps                     bool
}

// projectContainerCommand makes start, stop, restart, kill, pause and unpause.
func projectContainerCommand(opts *globalOptions, use, short, example string, setup func(*cobra.Command, *opFlags), run func(cmd *cobra.Command, s *session, of *opFlags, services []string) error) *cobra.Command {
	of := &opFlags{}
	c := &cobra.Command{
		Use: use, Short: short, Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd.Context(), opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			return run(cmd, s, of, args)
		},
	}
	if setup != nil {
		setup(c, of)
	}
	return c
}

func timeoutFlag(c *cobra.Command, of *opFlags) {
	c.Flags().IntVarP(&of.timeout, "timeout", "t", 10, "Specify a shutdown timeout in seconds")
}

func newStartCommand(opts *globalOptions) *cobra.Command {
	return projectContainerCommand(opts, "start [SERVICE...]", "Start services", "  berth start web\n  berth start --wait   # until every service runs, healthy where it has a healthcheck",
		func(c *cobra.Command, of *opFlags) {
			c.Flags().BoolVar(&of.wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode")
			c.Flags().IntVar(&of.waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
		},
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, true, services)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return errors.New("no containers to start")
			}
			err = eachContainer(ctx, opts, cmd, serviceOrder(s, cs, false), "Starting", "Started", func(c container.Container) error {
				return s.client.Containers().Start(ctx, c.ID)
			})
			if err != nil || !of.wait {
				return err
			}
			return waitConverged(ctx, s, services, of.waitTimeout)
		})
}

func newStopCommand(opts *globalOptions) *cobra.Command {
	return projectContainerCommand(opts, "stop [SERVICE...]", "Stop services", "  berth stop -t 2 web", timeoutFlag,
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, false, services)
			if err != nil {
				return err
			}
			t := durationFlag(cmd.Flags().Changed("timeout"), of.timeout)
			return eachContainer(ctx, opts, cmd, serviceOrder(s, cs, true), "Stopping", "Stopped", func(c container.Container) error {
				return s.client.Containers().Stop(ctx, c.ID, t)
			})
		})
}

func newRestartCommand(opts *globalOptions) *cobra.Command {
	return projectContainerCommand(opts, "restart [SERVICE...]", "Restart service containers", "  berth restart web",
		func(c *cobra.Command, of *opFlags) {
			timeoutFlag(c, of)
			c.Flags().BoolVar(&of.noDeps, "no-deps", false, "Don't restart dependent services")
		},
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, true, services)
			if err != nil {
				return err
			}
			t := durationFlag(cmd.Flags().Changed("timeout"), of.timeout)
			return eachContainer(ctx, opts, cmd, serviceOrder(s, cs, false), "Restarting", "Started", func(c container.Container) error {
				if err := s.client.Containers().Stop(ctx, c.ID, t); err != nil {
					return err
				}
				return s.client.Containers().Start(ctx, c.ID)
			})
		})
}

func newKillCommand(opts *globalOptions) *cobra.Command {
	return projectContainerCommand(opts, "kill [OPTIONS] [SERVICE...]", "Force stop service containers", "  berth kill -s SIGHUP web",
		func(c *cobra.Command, of *opFlags) {
			c.Flags().StringVarP(&of.signal, "signal", "s", "SIGKILL", "SIGNAL to send to the container")
		},
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, false, services)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return errors.New("no container to kill")
			}
			return eachContainer(ctx, opts, cmd, serviceOrder(s, cs, true), "Killing", "Killed", func(c container.Container) error {
				return s.client.Containers().Kill(ctx, c.ID, of.signal)
			})
		})
}

func newPauseCommand(opts *globalOptions, pause bool) *cobra.Command {
	use, short, working, done := "pause [SERVICE...]", "Pause services", "Pausing", "Paused"
	if !pause {
		use, short, working, done = "unpause [SERVICE...]", "Unpause services", "Unpausing", "Unpaused"
	}
	return projectContainerCommand(opts, use, short, "  berth "+strings.Fields(use)[0]+" web", nil,
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, false, services)
			if err != nil {
				return err
			}
			return eachContainer(ctx, opts, cmd, serviceOrder(s, cs, !pause), working, done, func(c container.Container) error {
				if pause {
					return s.client.Containers().Pause(ctx, c.ID)
				}
				return s.client.Containers().Unpause(ctx, c.ID)
			})
		})
}

func newRmCommand(opts *globalOptions) *cobra.Command {
	return projectContainerCommand(opts, "rm [OPTIONS] [SERVICE...]", "Removes stopped service containers", "  berth rm -f -s web   # stop web if needed, then remove it",
		func(c *cobra.Command, of *opFlags) {
			c.Flags().BoolVarP(&of.force, "force", "f", false, "Don't ask to confirm removal")
			c.Flags().BoolVarP(&of.stop, "stop", "s", false, "Stop the containers, if required, before removing")
			c.Flags().BoolVarP(&of.volumes, "volumes", "v", false, "Remove any anonymous volumes attached to containers")
		},
		func(cmd *cobra.Command, s *session, of *opFlags, services []string) error {
			ctx := cmd.Context()
			cs, err := s.containers(ctx, true, services)
			if err != nil {
				return err
			}
			var targets []container.Container
			for _, c := range cs {
				running := c.State.Status == container.Running || c.State.Status == container.Paused
				if running && !of.stop {
					continue
				}
				targets = append(targets, c)
			}
			if len(targets) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No stopped containers")
				return nil
			}
			if !of.force {
				var names []string
				for _, c := range targets {
					names = append(names, c.Name)
				}
				if f, ok := cmd.InOrStdin().(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
					return fmt.Errorf("going to remove %s: pass -f to confirm when not on a terminal", strings.Join(names, ", "))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Going to remove %s\n? Are you sure? (y/N) ", strings.Join(names, ", "))
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return eachContainer(ctx, opts, cmd, serviceOrder(s, targets, true), "Removing", "Removed", func(c container.Container) error {
				return s.client.Containers().Remove(ctx, c.ID, container.RemoveOptions{Force: of.stop, Volumes: of.volumes})
			})
		})
}

func newCreateCommand(opts *globalOptions) *cobra.Command {
	uo := &upOptions{}
	c := &cobra.Command{
		Use:     "create [OPTIONS] [SERVICE...]",
		Short:   "Creates containers for a service",
		Example: "  berth create && berth start",
		RunE: func(cmd *cobra.Command, args []string) error {
			uo.noStart, uo.detach = true, true
			return runUp(cmd, opts, uo, args)
		},
	}
	f := c.Flags()
	f.BoolVar(&uo.build, "build", false, "Build images before starting containers")
	f.BoolVar(&uo.noBuild, "no-build", false, "Don't build an image, even if it's missing")
	f.BoolVar(&uo.forceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	f.BoolVar(&uo.noRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	f.BoolVar(&uo.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	f.StringVar(&uo.pull, "pull", "", `Pull image before running ("always"|"missing"|"never")`)
	f.StringArrayVar(&uo.scale, "scale", nil, "Scale SERVICE to NUM instances")
	return c
}

func newPortCommand(opts *globalOptions) *cobra.Command {
	var protocol string
	var index int
	c := &cobra.Command{
		Use:     "port [OPTIONS] SERVICE PRIVATE_PORT",
		Short:   "Print the public port for a port binding",
		Example: "  berth port web 80     # 0.0.0.0:8080",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil {
				return fmt.Errorf("invalid port %q", args[1])
			}
			s, err := openSession(cmd.Context(), opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			cs, err := s.containers(cmd.Context(), false, []string{args[0]})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Config.Labels[reconcile.LabelNumber] != strconv.Itoa(index) {
					continue
				}
				for _, p := range c.Network.Ports {
					if p.ContainerPort == uint16(port) && p.Protocol == protocol {
						fmt.Fprintf(cmd.OutOrStdout(), "%s:%d\n", p.HostIP, p.HostPort)
						return nil
					}
				}
				return fmt.Errorf("no port %d/%s published for %s", port, protocol, c.Name)
			}
			return fmt.Errorf("service %q has no running container #%d", args[0], index)
		},
	}
	c.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	c.Flags().IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

func newVolumesCommand(opts *globalOptions) *cobra.Command {
	var format string
	var quiet bool
	c := &cobra.Command{
		Use:     "volumes [OPTIONS] [SERVICE...]",
		Short:   "List volumes",
		Example: "  berth volumes            # the project's volumes\n  berth volumes -q web     # the names of those web's containers mount",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openSession(ctx, opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			vols, err := s.client.Volumes().List(ctx, api.VolumeListOptions{Labels: map[string]string{reconcile.LabelProject: s.name}})
			if err != nil {
				return err
			}
			if len(args) > 0 {
				// Those that the services' containers mount, as docker
				// compose lists them.
				cs, err := s.containers(ctx, true, args)
				if err != nil {
					return err
				}
				mounted := map[string]bool{}
				for _, c := range cs {
					for _, m := range c.Config.Mounts {
						if m.Type == container.MountVolume {
							mounted[m.Source] = true
						}
					}
				}
				vols = slices.DeleteFunc(vols, func(v api.VolumeListEntry) bool { return !mounted[v.Name] })
			}
			return writeVolumes(cmd.OutOrStdout(), format, quiet, vols)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	c.Flags().StringVar(&format, "format", "", "Format output: table, json or a Go template")
	return c
}

func newImagesCommand(opts *globalOptions) *cobra.Command {
	var format string
	var quiet bool
	c := &cobra.Command{
		Use:     "images [OPTIONS] [SERVICE...]",
		Short:   "List images used by the created containers",
		Example: "  berth images --format json",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openSession(ctx, opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			cs, err := s.containers(ctx, true, args)
			if err != nil {
				return err
			}
			imgs, err := s.client.Images().List(ctx, image.ListOptions{})
			if err != nil {
				return err
			}
			byID := map[string]image.Summary{}
			for _, i := range imgs {
				byID[i.ID] = i
			}
			type row struct {
				ContainerName string `json:"ContainerName"`
				Repository    string `json:"Repository"`
				Tag           string `json:"Tag"`
				ID            string `json:"ID"`
				Size          int64  `json:"Size"`
			}
			var rows []row
			for _, c := range cs {
				repo, tag := c.Config.Image, "latest"
				if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
					repo, tag = repo[:i], repo[i+1:]
				}
				rows = append(rows, row{ContainerName: c.Name, Repository: repo, Tag: tag, ID: c.ImageID, Size: byID[c.ImageID].Size})
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
			case format == "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if rows == nil {
					rows = []row{}
				}
				return enc.Encode(rows)
			default:
				tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
				for _, r := range rows {
					id := strings.TrimPrefix(r.ID, "sha256:")
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ContainerName, r.Repository, r.Tag, id[:min(12, len(id))], humanSize(r.Size))
				}
				return tw.Flush()
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return c
}

func newEventsCommand(opts *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "events [OPTIONS] [SERVICE...]",
		Short:   "Receive real time events from containers",
		Example: "  berth events --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openSession(ctx, opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			events, errc := s.client.Containers().Events(ctx, map[string]string{reconcile.LabelProject: s.name})
			out := cmd.OutOrStdout()
			for ev := range events {
				svc := ev.Labels[reconcile.LabelService]
				if len(args) > 0 && !slices.Contains(args, svc) {
					continue
				}
				if asJSON {
					b, _ := json.Marshal(map[string]any{
						"time": ev.Time, "type": "container", "action": ev.Action, "id": ev.ID,
						"service": svc, "attributes": map[string]string{"name": ev.Name, "image": ev.Labels[reconcile.LabelImage]},
					})
					fmt.Fprintln(out, string(b))
					continue
				}
				fmt.Fprintf(out, "%s container %s %s (name=%s, service=%s)\n", ev.Time.Format("2006-01-02 15:04:05.000000"), ev.Action, ev.ID, ev.Name, svc)
			}
			return <-errc
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "Output events as a stream of json objects")
	return c
}

func newWaitCommand(opts *globalOptions) *cobra.Command {
	var downProject bool
	c := &cobra.Command{
		Use:     "wait SERVICE [SERVICE...] [OPTIONS]",
		Short:   "Block until containers of all (or specified) services stop.",
		Example: "  berth wait migrate && berth up -d web",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openSession(ctx, opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			cs, err := s.containers(ctx, true, args)
			if err != nil {
				return err
			}
			code := 0
			for _, c := range cs {
				n, err := s.client.Containers().Wait(ctx, c.ID)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
				if n != 0 {
					code = n
				}
			}
			if downProject {
				if _, err := s.projects.Down(ctx, daemon.DownRequest{Name: s.name, Project: s.project}, nil); err != nil {
					return err
				}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&downProject, "down-project", false, "Drops project when the first container stops")
	return c
}

func newPullCommand(opts *globalOptions) *cobra.Command {
	var ignoreFailures, quiet bool
	c := &cobra.Command{
		Use:     "pull [OPTIONS] [SERVICE...]",
		Short:   "Pull service images",
		Example: "  berth pull web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return imageOp(cmd, opts, args, quiet, ignoreFailures, "Pulling", "Pulled", func(ctx context.Context, s *session, ref string, sink image.Sink) error {
				_, err := s.client.Images().Pull(ctx, ref, image.PullOptions{Sink: sink})
				return err
			}, func(build bool) bool { return !build })
		},
	}
	c.Flags().BoolVar(&ignoreFailures, "ignore-pull-failures", false, "Pull what it can and ignores images with pull failures")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Pull without printing progress information")
	return c
}

func newPushCommand(opts *globalOptions) *cobra.Command {
	var ignoreFailures, quiet bool
	c := &cobra.Command{
		Use:     "push [OPTIONS] [SERVICE...]",
		Short:   "Push service images",
		Example: "  berth push web",
		RunE: func(cmd *cobra.Command, args []string) error {
			return imageOp(cmd, opts, args, quiet, ignoreFailures, "Pushing", "Pushed", func(ctx context.Context, s *session, ref string, sink image.Sink) error {
				_, err := s.client.Images().Push(ctx, ref, image.PushOptions{Sink: sink})
				return err
			}, func(build bool) bool { return true })
		},
	}
	c.Flags().BoolVar(&ignoreFailures, "ignore-push-failures", false, "Push what it can and ignores images with push failures")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Push without printing progress information")
	return c
}

// imageOp pulls or pushes the images of the services (each once).
func imageOp(cmd *cobra.Command, opts *globalOptions, services []string, quiet, ignore bool, working, done string,
	op func(ctx context.Context, s *session, ref string, sink image.Sink) error, wanted func(build bool) bool) error {
	ctx := cmd.Context()
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return err
	}
	defer s.close()
	names, err := reconcile.Scope(s.project, services, true)
	if err != nil {
		return err
	}
	mode := opts.Progress
	if quiet {
		mode = string(progress.ModeQuiet)
	}
	r, err := progress.NewRenderer(progress.Mode(mode), cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr()), working)
	if err != nil {
		return err
	}
	defer r.Close()
	seen := map[string]bool{}
	var errs []error
	for _, name := range names {
		svc := s.project.Services[name]
		if seen[svc.Image] || !wanted(svc.Build != nil) {
			continue
		}
		seen[svc.Image] = true
		id := "Image " + svc.Image
		progress.Emit(r, progress.WorkingEvent(id, working))
		err := op(ctx, s, svc.Image, func(ev image.Event) {
			progress.Emit(r, progress.Event{ID: ev.ID, ParentID: id, Status: progress.Working, Text: ev.Status, Current: ev.Current, Total: ev.Total})
		})
		if err != nil {
			progress.Emit(r, progress.ErrorEvent(id, err))
			if !ignore {
				errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			}
			continue
		}
		progress.Emit(r, progress.DoneEvent(id, done))
	}
	return errors.Join(errs...)
}
