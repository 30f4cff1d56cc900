package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/reconcile"
)

// buildFlags are `berth build`'s own flags, as docker compose build has them.
type buildFlags struct {
	buildArgs []string
	noCache   bool
	pull      bool
	quiet     bool
	withDeps  bool
}

func newBuildCommand(opts *globalOptions) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild services",
		Long: "Build or rebuild the images of the services that have a build: section, in the daemon, with\n" +
			"a layer cache: a rebuild with nothing changed does no work. Images are named after the\n" +
			"service's image: (or PROJECT-SERVICE) and build.tags. SOURCE_DATE_EPOCH in the environment\n" +
			"(or as a build arg) sets the timestamps of the image, which is reproducible either way.",
		Example: "  berth build\n  berth --progress plain build --no-cache web\n  berth build --build-arg VERSION=1.2 web",
		RunE:    func(cmd *cobra.Command, args []string) error { return runBuild(cmd, opts, f, args) },
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "Set build-time variables for services (KEY=VALUE, or KEY to take it from the environment)")
	fl.BoolVar(&f.noCache, "no-cache", false, "Do not use cache when building the image")
	fl.BoolVar(&f.pull, "pull", false, "Always attempt to pull a newer version of the image")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "Don't print anything to STDOUT")
	fl.BoolVar(&f.withDeps, "with-dependencies", false, "Also build dependencies (transitively)")
	return c
}

// runBuild builds the services' images one after another through the
// daemon, each once, and reports every service that failed.
func runBuild(cmd *cobra.Command, opts *globalOptions, f buildFlags, services []string) error {
	ctx := cmd.Context()
	args := map[string]string{}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue // KEY alone and unset: left to the Dockerfile, as docker does
			}
		}
		args[k] = v
	}
	var epoch *int64
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", v)
		}
		epoch = &n
	}
	s, err := openSession(ctx, opts, false)
	if err != nil {
		return err
	}
	defer s.close()
	names, err := reconcile.Scope(s.project, services, !f.withDeps && len(services) > 0)
	if err != nil {
		return err
	}
	mode := opts.Progress
	if f.quiet {
		mode = string(progress.ModeQuiet)
	}
	r, err := progress.NewRenderer(progress.Mode(mode), cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr()), "Building")
	if err != nil {
		return err
	}
	defer r.Close()
	seen := map[string]bool{}
	var errs []error
	for _, name := range names {
		svc := s.project.Services[name]
		if svc.Build == nil || seen[svc.Image] {
			continue
		}
		seen[svc.Image] = true
		bo, err := engine.ServiceBuildOptions(s.project, svc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bo.NoCache = bo.NoCache || f.noCache
		bo.Pull = bo.Pull || f.pull
		if len(args) > 0 && bo.Args == nil {
			bo.Args = map[string]string{}
		}
		for k, v := range args {
			bo.Args[k] = v
		}
		if bo.SourceDateEpoch == nil {
			bo.SourceDateEpoch = epoch
		}
		bo.Sink = r
		id := "Service " + name
		if _, err := s.client.Builds().Build(ctx, bo); err != nil {
			progress.Emit(r, progress.ErrorEvent(id, err))
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		progress.Emit(r, progress.DoneEvent(id, "Built"))
	}
	return errors.Join(errs...)
}
