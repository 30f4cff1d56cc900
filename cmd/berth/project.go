package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/manifest"
)

// invocation is what a command takes from the process it runs in: the
// user's environment, current directory and standard streams. Commands read
// it through invocationFrom, so that tests can run them in parallel with an
// environment of their own (withInvocation).
type invocation struct {
	environ []string
	workDir string // empty: the process's
	stdin   io.Reader
	stderr  io.Writer
}

type invocationKey struct{}

// withInvocation makes commands run under ctx see inv instead of the
// process's environment.
func withInvocation(ctx context.Context, inv invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

func invocationFrom(ctx context.Context) invocation {
	if inv, ok := ctx.Value(invocationKey{}).(invocation); ok {
		return inv
	}
	return invocation{environ: os.Environ(), stdin: os.Stdin, stderr: os.Stderr}
}

// loadProject loads the Compose project that the global flags name, as
// docker compose does: every compose command starts here. services, when
// given, restrict the project to them and what they depend on.
func loadProject(ctx context.Context, opts *globalOptions, services []string) (*manifest.Project, error) {
	return manifest.Load(ctx, manifestOptions(ctx, opts, services))
}

// manifestOptions turns the global flags into the loader's options.
func manifestOptions(ctx context.Context, opts *globalOptions, services []string) manifest.Options {
	inv := invocationFrom(ctx)
	envFiles := opts.EnvFiles
	if len(envFiles) == 0 {
		// docker compose's default for --env-file
		envFiles = strings.FieldsFunc(lookupEnv(inv.environ, "COMPOSE_ENV_FILES"), func(c rune) bool { return c == ',' })
	}
	return manifest.Options{
		Files:            opts.Files,
		ProjectName:      opts.ProjectName,
		ProjectDirectory: opts.ProjectDirectory,
		Profiles:         opts.Profiles,
		EnvFiles:         envFiles,
		Services:         services,
		Environ:          inv.environ,
		WorkDir:          inv.workDir,
		Stdin:            inv.stdin,
		Warn: func(msg string) {
			if inv.stderr != nil {
				fmt.Fprintln(inv.stderr, "berth: warning:", msg)
			}
		},
	}
}

// lookupEnv is the value of key in a KEY=VALUE list; the last one wins.
func lookupEnv(environ []string, key string) string {
	value := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = v
		}
	}
	return value
}
