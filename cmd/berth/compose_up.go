package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/reconcile"
)

type upOptions struct {
	detach, forceRecreate, noRecreate, noDeps, removeOrphans, noStart  bool
	build, noBuild, wait, dryRun, abortOnExit, noLogPrefix, timestamps bool
	abortOnFailure, noColor, renewAnonVolumes, alwaysRecreateDeps      bool
	pull, exitCodeFrom                                                 string
	scale, attach, noAttach                                            []string
	timeout, waitTimeout                                               int
}

func newUpCommand(opts *globalOptions) *cobra.Command {
	uo := &upOptions{}
	c := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		Example: "  berth up -d                 # start the project in the background\n" +
			"  berth up -d --scale web=3   # with three replicas of web\n" +
			"  berth up --build web        # rebuild web's image, then start web and what it depends on",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, opts, uo, args)
		},
	}
	f := c.Flags()
	f.BoolVarP(&uo.detach, "detach", "d", false, "Detached mode: run containers in the background")
	f.BoolVar(&uo.forceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	f.BoolVar(&uo.noRecreate, "no-recreate", false, "If containers already exist, don't recreate them")
	f.BoolVar(&uo.alwaysRecreateDeps, "always-recreate-deps", false, "Recreate dependent containers. Incompatible with --no-recreate")
	f.BoolVarP(&uo.renewAnonVolumes, "renew-anon-volumes", "V", false, "Recreate anonymous volumes instead of retrieving data from the previous containers")
	f.BoolVar(&uo.noDeps, "no-deps", false, "Don't start linked services")
	f.BoolVar(&uo.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	f.BoolVar(&uo.noStart, "no-start", false, "Don't start the services after creating them")
	f.BoolVar(&uo.build, "build", false, "Build images before starting containers")
	f.BoolVar(&uo.noBuild, "no-build", false, "Don't build an image, even if it's missing")
	f.BoolVar(&uo.wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode")
	f.IntVar(&uo.waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	f.BoolVar(&uo.dryRun, "dry-run", false, "Show what would be done, without doing it")
	f.BoolVar(&uo.abortOnExit, "abort-on-container-exit", false, "Stops all containers if any container was stopped")
	f.BoolVar(&uo.abortOnFailure, "abort-on-container-failure", false, "Stops all containers if any container exited with failure")
	f.BoolVar(&uo.noColor, "no-color", false, "Produce monochrome output")
	f.StringVar(&uo.exitCodeFrom, "exit-code-from", "", "Return the exit code of the selected service container")
	f.StringVar(&uo.pull, "pull", "", `Pull image before running ("always"|"missing"|"never")`)
	f.StringArrayVar(&uo.scale, "scale", nil, "Scale SERVICE to NUM instances (SERVICE=NUM)")
	f.StringArrayVar(&uo.attach, "attach", nil, "Restrict attaching to the specified services")
	f.StringArrayVar(&uo.noAttach, "no-attach", nil, "Do not attach (stream logs) to the specified services")
	f.BoolVar(&uo.noLogPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	f.BoolVar(&uo.timestamps, "timestamps", false, "Show timestamps")
	f.IntVarP(&uo.timeout, "timeout", "t", 10, "Use this timeout in seconds for container shutdown")
	return c
}

func newScaleCommand(opts *globalOptions) *cobra.Command {
	uo := &upOptions{detach: true, timeout: 10}
	c := &cobra.Command{
		Use:     "scale [SERVICE=REPLICAS...]",
		Short:   "Scale services",
		Example: "  berth scale web=3 worker=0   # three replicas of web, none of worker",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// As docker compose: up -d of the services named, with their
			// new replica counts (and what they depend on, unless --no-deps).
			var services []string
			for _, a := range args {
				name, n, ok := strings.Cut(a, "=")
				if !ok || name == "" || n == "" {
					return fmt.Errorf("invalid scale specifier %q: want SERVICE=REPLICAS", a)
				}
				if _, err := strconv.Atoi(n); err != nil {
					return fmt.Errorf("invalid scale specifier %q: %q is not a number of replicas", a, n)
				}
				services = append(services, name)
			}
			uo.scale = args
			return runUp(cmd, opts, uo, services)
		},
	}
	c.Flags().BoolVar(&uo.noDeps, "no-deps", false, "Don't start linked services")
	c.Flags().BoolVar(&uo.dryRun, "dry-run", false, "Show what would be done, without doing it")
	return c
}

func runUp(cmd *cobra.Command, opts *globalOptions, uo *upOptions, services []string) error {
	ctx := cmd.Context()
	if uo.forceRecreate && uo.noRecreate {
		return errors.New("--force-recreate and --no-recreate are incompatible")
	}
	if uo.alwaysRecreateDeps && uo.noRecreate {
		return errors.New("--always-recreate-deps and --no-recreate are incompatible")
	}
	if uo.renewAnonVolumes && uo.noRecreate {
		return errors.New("--renew-anon-volumes and --no-recreate are incompatible")
	}
	if uo.build && uo.noBuild {
		return errors.New("--build and --no-build are incompatible")
	}
	if uo.exitCodeFrom != "" {
		uo.abortOnExit = true
	}
	if uo.abortOnExit && uo.abortOnFailure {
		return errors.New("--abort-on-container-failure cannot be combined with --abort-on-container-exit")
	}
	if uo.detach && uo.abortOnExit {
		return errors.New("--abort-on-container-exit and --detach are incompatible")
	}
	if uo.detach && uo.abortOnFailure {
		return errors.New("--abort-on-container-failure and --detach are incompatible")
	}
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return err
	}
	defer s.close()
	if err := applyScale(s.project, uo.scale); err != nil {
		return err
	}
	req := daemon.UpRequest{
		Project: s.project, DryRun: uo.dryRun,
		Timeout: durationFlag(cmd.Flags().Changed("timeout"), uo.timeout),
		Options: reconcile.Options{
			Services: services, NoDeps: uo.noDeps, ForceRecreate: uo.forceRecreate, NoRecreate: uo.noRecreate,
			AlwaysRecreateDeps: uo.alwaysRecreateDeps, RenewAnonVolumes: uo.renewAnonVolumes,
			RemoveOrphans: uo.removeOrphans, NoStart: uo.noStart, Pull: uo.pull,
		},
	}
	switch {
	case uo.build:
		req.Options.Build = reconcile.BuildAlways
	case uo.noBuild:
		req.Options.Build = reconcile.BuildNever
	}
	r, err := renderer(opts, cmd.ErrOrStderr(), "Running")
	if err != nil {
		return err
	}
	// With a second's margin: StartedAt is the daemon's stamp, and a
	// container started as up began must count as started by it.
	began := time.Now().Add(-time.Second)
	res, err := s.projects.Up(ctx, req, r)
	r.Close()
	if err != nil {
		return err
	}
	if uo.dryRun {
		fmt.Fprint(cmd.OutOrStdout(), res.Plan)
		return nil
	}
	if uo.wait {
		return waitConverged(ctx, s, services, uo.waitTimeout)
	}
	if uo.detach || uo.noStart {
		return nil
	}
	return attachAndWait(cmd, opts, s, services, uo, began)
}

// waitConverged waits until every container of the services runs, and is
// healthy when it has a healthcheck (up --wait).
func waitConverged(ctx context.Context, s *session, services []string, timeoutSeconds int) error {
	if timeoutSeconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutSeconds)*time.Second)
		defer cancel()
	}
	for {
		cs, err := s.containers(ctx, true, services)
		if err != nil {
			return err
		}
		ready := true
		for _, c := range cs {
			st := c.State
			switch {
			case st.Status == container.Exited && st.ExitCode == 0 && c.Config.RestartPolicy.Name != "always":
				// a one-shot job that completed
			case st.Status != container.Running:
				if st.Status == container.Exited {
					return fmt.Errorf("container %s exited (%d)", c.Name, st.ExitCode)
				}
				ready = false
			case st.Health != nil && st.Health.Status == "unhealthy":
				return fmt.Errorf("container %s is unhealthy", c.Name)
			case st.Health != nil && st.Health.Status != "healthy":
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timeout waiting for the project to be running and healthy")
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// attachAndWait prints the services' logs until the containers stop or the
// user presses Ctrl-C, which stops the project (a second Ctrl-C kills it).
func attachAndWait(cmd *cobra.Command, opts *globalOptions, s *session, services []string, uo *upOptions, began time.Time) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	printer := newLogPrinter(cmd.OutOrStdout(), !uo.noLogPrefix, uo.timestamps, !uo.noColor && isTerminal(cmd.OutOrStdout()))
	attached := filterAttach(s.project, services, uo.attach, uo.noAttach)
	exits := make(chan container.Container, 16)
	follow := startFollowing(ctx, s, attached, began, printer, exits)

	stopAll := func(kill bool) {
		stopCtx := context.WithoutCancel(ctx)
		cs, _ := s.containers(stopCtx, false, services)
		for _, c := range cs {
			if kill {
				_ = s.client.Containers().Kill(stopCtx, c.ID, "SIGKILL")
			} else {
				_ = s.client.Containers().Stop(stopCtx, c.ID, durationFlag(cmd.Flags().Changed("timeout"), uo.timeout))
			}
		}
	}
	// As docker compose: the code of the first container whose exit
	// aborts, unless the --exit-code-from service's exit comes, even while
	// the others stop.
	exitCode, captured := 0, false
	capture := func(c container.Container) {
		if !captured && uo.exitCodeFrom != "" && c.Config.Labels[reconcile.LabelService] == uo.exitCodeFrom {
			exitCode, captured = c.State.ExitCode, true
		}
	}
	for {
		select {
		case <-sigs:
			fmt.Fprintln(cmd.ErrOrStderr(), "Gracefully stopping... (press Ctrl+C again to force)")
			done := make(chan struct{})
			go func() { stopAll(false); close(done) }()
			select {
			case <-done:
			case <-sigs:
				stopAll(true)
			}
			cancel()
			follow.Wait()
			return nil
		case c := <-exits:
			if uo.abortOnExit || (uo.abortOnFailure && c.State.ExitCode != 0) {
				exitCode = c.State.ExitCode
				capture(c)
				fmt.Fprintln(cmd.ErrOrStderr(), "Aborting on container exit...")
				stopAll(false)
				cancel()
				follow.Wait()
				for drained := false; !drained; {
					select {
					case c := <-exits:
						capture(c)
					default:
						drained = true
					}
				}
				if !captured && uo.exitCodeFrom != "" {
					// Its exit may have come as the following ended.
					if cs, err := s.containers(context.WithoutCancel(ctx), true, []string{uo.exitCodeFrom}); err == nil {
						for _, c := range cs {
							if c.State.Status == container.Exited {
								capture(c)
							}
						}
					}
				}
				if exitCode != 0 {
					return &exitError{code: exitCode}
				}
				return nil
			}
			capture(c)
		case <-follow.allDone():
			if exitCode != 0 {
				return &exitError{code: exitCode}
			}
			return nil
		}
	}
}

func filterAttach(p *manifest.Project, services, attach, noAttach []string) []string {
	if len(attach) > 0 {
		return attach
	}
	if len(noAttach) == 0 {
		return services // all of them when none are named
	}
	if len(services) == 0 {
		services = p.ServiceNames()
	}
	return slices.DeleteFunc(slices.Clone(services), func(s string) bool { return slices.Contains(noAttach, s) })
}

type downOptions struct {
	volumes, removeOrphans, dryRun bool
	rmi                            string
	timeout                        int
}

func newDownCommand(opts *globalOptions) *cobra.Command {
	do := &downOptions{}
	c := &cobra.Command{
		Use:     "down [OPTIONS] [SERVICES]",
		Short:   "Stop and remove containers, networks",
		Example: "  berth down       # stop and remove the project's containers and networks\n  berth down -v    # and its volumes",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDown(cmd, opts, do)
		},
	}
	f := c.Flags()
	f.BoolVarP(&do.volumes, "volumes", "v", false, "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers")
	f.BoolVar(&do.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	f.StringVar(&do.rmi, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	f.IntVarP(&do.timeout, "timeout", "t", 10, "Specify a shutdown timeout in seconds")
	f.BoolVar(&do.dryRun, "dry-run", false, "Show what would be done, without doing it")
	return c
}

func runDown(cmd *cobra.Command, opts *globalOptions, do *downOptions) error {
	if do.rmi != "" && do.rmi != "local" && do.rmi != "all" {
		return fmt.Errorf("--rmi: invalid value %q: want local or all", do.rmi)
	}
	ctx := cmd.Context()
	s, err := openSession(ctx, opts, true)
	if err != nil {
		return err
	}
	defer s.close()
	r, err := renderer(opts, cmd.ErrOrStderr(), "Running")
	if err != nil {
		return err
	}
	res, err := s.projects.Down(ctx, daemon.DownRequest{
		Name: s.name, Project: s.project, DryRun: do.dryRun,
		Timeout: durationFlag(cmd.Flags().Changed("timeout"), do.timeout),
		Options: reconcile.DownOptions{Volumes: do.volumes, RemoveOrphans: do.removeOrphans, Images: do.rmi},
	}, r)
	r.Close()
	if do.dryRun {
		fmt.Fprint(cmd.OutOrStdout(), res.Plan)
	}
	return err
}
