package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/reconcile"
)

// withReplica runs fn on replica index of service, in a session of the
// project: a running one, or any with all.
func withReplica(cmd *cobra.Command, opts *globalOptions, service string, index int, all bool, fn func(*session, container.Container) error) error {
	s, err := openSession(cmd.Context(), opts, true)
	if err != nil {
		return err
	}
	defer s.close()
	ctr, err := serviceReplica(cmd, s, service, index, all)
	if err != nil {
		return err
	}
	return fn(s, ctr)
}

// serviceReplica is replica index of service; a stopped one too with all.
func serviceReplica(cmd *cobra.Command, s *session, service string, index int, all bool) (container.Container, error) {
	cs, err := s.containers(cmd.Context(), all, []string{service})
	if err != nil {
		return container.Container{}, err
	}
	for _, c := range cs {
		if c.Config.Labels[reconcile.LabelNumber] == strconv.Itoa(index) && c.Config.Labels[reconcile.LabelOneOff] != "True" {
			return c, nil
		}
	}
	if all {
		return container.Container{}, fmt.Errorf("service %q has no container number %d", service, index)
	}
	return container.Container{}, fmt.Errorf("service %q is not running", service)
}

// noTTYFlag is -T: --no-tty, as docker compose names it now, and
// --no-TTY, as it did before.
func noTTYFlag(f *pflag.FlagSet, v *bool, usage string) {
	f.BoolVarP(v, "no-tty", "T", false, usage)
	f.BoolVar(v, "no-TTY", false, usage)
	_ = f.MarkHidden("no-TTY")
}

func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

func newExecCommand(opts *globalOptions) *cobra.Command {
	o := &execFlags{}
	var noTTY bool
	var index int
	c := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReplica(cmd, opts, args[0], index, false, func(_ *session, ctr container.Container) error {
				// As docker compose: stdin is attached and a terminal given
				// unless -T, or when there is no terminal to give.
				o.interactive = true
				o.tty = !noTTY && stdinIsTerminal()
				return execInContainer(cmd, opts, o, ctr.ID, args[1:])
			})
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: Run command in the background")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the process")
	f.StringVarP(&o.user, "user", "u", "", "Run the command as this user")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Path to workdir directory for this command")
	f.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	noTTYFlag(f, &noTTY, "Disable pseudo-TTY allocation. By default `berth exec` allocates a TTY")
	f.IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

func newAttachCommand(opts *globalOptions) *cobra.Command {
	o := &attachFlags{}
	var index int
	c := &cobra.Command{
		Use:     "attach [OPTIONS] SERVICE",
		Short:   "Attach local standard input, output, and error streams to a service's running container",
		Example: "  berth attach web             # its output, until ctrl-c or the container ends\n  berth attach --index 2 web   # the second replica",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReplica(cmd, opts, args[0], index, false, func(_ *session, ctr container.Container) error {
				return attachRunning(cmd, opts, o, ctr.ID)
			})
		},
	}
	o.register(c.Flags())
	c.Flags().IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

type composeRunFlags struct {
	rm, detach, noTTY, servicePorts, noDeps, interactive bool
	name, user, workdir, entrypoint                      string
	env, labels, volumes, publish                        []string
}

func newRunCommand(opts *globalOptions) *cobra.Command {
	o := &composeRunFlags{}
	c := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command on a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOneOff(cmd, opts, o, args[0], args[1:])
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.BoolVar(&o.rm, "rm", false, "Automatically remove the container when it exits")
	f.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	noTTYFlag(f, &o.noTTY, "Disable pseudo-TTY allocation (default: auto-detected)")
	f.BoolVarP(&o.interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	f.BoolVar(&o.servicePorts, "service-ports", false, "Run command with all service's ports enabled and mapped to the host")
	f.BoolVar(&o.noDeps, "no-deps", false, "Don't start linked services")
	f.StringVar(&o.name, "name", "", "Assign a name to the container")
	f.StringVarP(&o.user, "user", "u", "", "Run as specified username or uid")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVar(&o.entrypoint, "entrypoint", "", "Override the entrypoint of the image")
	f.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	f.StringArrayVarP(&o.labels, "label", "l", nil, "Add or override a label")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "Bind mount a volume")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	return c
}

// runOneOff is compose's run: the service's dependencies up (unless
// --no-deps), then a one-off container of the service with the overrides,
// attached unless -d, exiting with its code.
func runOneOff(cmd *cobra.Command, opts *globalOptions, o *composeRunFlags, service string, command []string) error {
	ctx := cmd.Context()
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return err
	}
	defer s.close()
	svc, ok := s.project.Services[service]
	if !ok {
		return fmt.Errorf("no such service: %s", service)
	}
	deps := make([]string, 0, len(svc.DependsOn))
	for d := range svc.DependsOn {
		deps = append(deps, d)
	}
	if !o.noDeps && len(deps) > 0 {
		r, err := renderer(opts, cmd.ErrOrStderr(), "Running")
		if err != nil {
			return err
		}
		_, err = s.projects.Up(ctx, daemon.UpRequest{Project: s.project, Options: reconcile.Options{Services: deps}}, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	// The service's image, networks and volumes must be there, as for up.
	if _, err := s.projects.Up(ctx, daemon.UpRequest{Project: s.project, Options: reconcile.Options{Services: []string{service}, NoDeps: true, NoContainers: true}}, nil); err != nil {
		return err
	}
	imageID := ""
	if img, err := s.client.Images().Inspect(ctx, svc.Image); err == nil {
		imageID = img.ID
	}
	cfg, err := reconcile.ContainerConfig(s.project, svc, 1, imageID)
	if err != nil {
		return err
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	cfg.Name = o.name
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("%s-%s-run-%s", s.project.Name, service, hex.EncodeToString(suffix))
	}
	cfg.Labels[reconcile.LabelOneOff] = "True"
	delete(cfg.Labels, reconcile.LabelNumber)
	cfg.RestartPolicy = container.RestartPolicy{}
	cfg.Healthcheck = nil
	if len(command) > 0 {
		cfg.Cmd = command
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = strings.Fields(o.entrypoint)
		if len(command) == 0 {
			cfg.Cmd = []string{}
		}
	}
	if o.user != "" {
		cfg.User = o.user
	}
	if o.workdir != "" {
		cfg.WorkingDir = o.workdir
	}
	env, err := readEnv(nil, o.env)
	if err != nil {
		return err
	}
	cfg.Env = append(cfg.Env, env...)
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	if !o.servicePorts {
		cfg.PortBindings = nil
	}
	for _, p := range o.publish {
		pb, err := parsePublish(p)
		if err != nil {
			return err
		}
		cfg.PortBindings = append(cfg.PortBindings, pb)
	}
	if len(o.volumes) > 0 {
		mounts, err := parseMounts(o.volumes, nil, nil)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, mounts...)
	}
	cfg.Tty = !o.noTTY && !o.detach && stdinIsTerminal()
	cfg.OpenStdin = o.interactive && !o.detach
	cfg.StdinOnce = cfg.OpenStdin
	cfg.AutoRemove = o.rm
	cc := s.client.Containers()
	ctr, err := cc.Create(ctx, cfg)
	if err != nil {
		return err
	}
	if o.detach {
		if err := cc.Start(ctx, ctr.ID); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), ctr.ID)
		return nil
	}
	keys, _ := parseDetachKeys("") // docker compose run has no flag for them
	err = attachedRun(cmd, cc, ctr, cfg.OpenStdin, true, keys)
	var exit *exitError
	if err != nil && !errors.As(err, &exit) {
		return err
	}
	return err
}

func newTopCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICES...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd.Context(), opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			cs, err := s.containers(cmd.Context(), false, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for i, c := range cs {
				t, err := s.client.Containers().Top(cmd.Context(), c.ID, nil)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, c.Name)
				tw := newTable(out)
				fmt.Fprintln(tw, strings.Join(t.Titles, "\t"))
				for _, p := range t.Processes {
					fmt.Fprintln(tw, strings.Join(p, "\t"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newStatsCommand(opts *globalOptions) *cobra.Command {
	var noStream bool
	var format string
	c := &cobra.Command{
		Use:   "stats [OPTIONS] [SERVICE]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd.Context(), opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			cs, err := s.containers(cmd.Context(), false, args)
			if err != nil {
				return err
			}
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
			}
			if len(names) == 0 {
				return nil
			}
			return showStats(cmd.Context(), cmd.OutOrStdout(), s.client.Containers(), names, !noStream, format)
		},
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	c.Flags().StringVar(&format, "format", "", "Format output: table or json")
	return c
}
