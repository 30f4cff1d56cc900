package build

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dockerfile is a parsed Dockerfile: its stages and the ARGs before the
// first FROM.
type dockerfile struct {
	name     string // as errors name it: "Dockerfile", or the file's path
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
}

// readDockerfile reads the Dockerfile opts name (or the inline one) and
// parses it.
func readDockerfile(opts Options) (*dockerfile, error) {
	if opts.DockerfileInline != "" {
		return parseDockerfile("Dockerfile", []byte(opts.DockerfileInline))
	}
	path := dockerfilePath(opts)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Dockerfile %s: no such file", path))
		}
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	return parseDockerfile(name, data)
}

// dockerfilePath is the Dockerfile's path on disk.
func dockerfilePath(opts Options) string {
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(opts.Context, name)
}

// parseDockerfile parses data with BuildKit's parser and instructions
// package; errors name the file and line.
func parseDockerfile(name string, data []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, dockerfileError(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, dockerfileError(name, err)
	}
	if len(stages) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: no FROM instruction: a Dockerfile starts with FROM (after ARGs)", name))
	}
	return &dockerfile{name: name, stages: stages, metaArgs: metaArgs, escape: res.EscapeToken}, nil
}

// dockerfileError turns a parser error into "Dockerfile:LINE: message".
func dockerfileError(name string, err error) error {
	line := lineOf(err)
	var unknown *instructions.UnknownInstructionError
	msg := err.Error()
	var le *parser.LocationError
	if errors.As(err, &le) {
		msg = le.Error()
	}
	if errors.As(err, &unknown) {
		line = unknown.Line
	}
	msg = strings.TrimPrefix(msg, "dockerfile parse error on line "+strconv.Itoa(line)+": ")
	if line > 0 {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s:%d: %s", name, line, msg))
	}
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %s", name, msg))
}

// lineOf is the first line an error's location names, or 0.
func lineOf(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return le.Locations[0][0].Start.Line
	}
	return 0
}

// at names a place in the Dockerfile for an error: "Dockerfile:7".
func (df *dockerfile) at(loc []parser.Range) string {
	if len(loc) == 0 {
		return df.name
	}
	return fmt.Sprintf("%s:%d", df.name, loc[0].Start.Line)
}

// proxyArgs are the build args every RUN sees without an ARG, and that
// stay out of the cache key and the history (docker's predefined args).
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// platformArgs are BuildKit's automatic platform args, given their value
// on this host (berth builds for the host's platform only).
func platformArgs() map[string]string {
	osName, arch := runtime.GOOS, runtime.GOARCH
	variant := ""
	if arch == "arm" {
		variant = "v7"
	}
	platform := osName + "/" + arch
	if variant != "" {
		platform += "/" + variant
	}
	return map[string]string{
		"BUILDPLATFORM": platform, "BUILDOS": osName, "BUILDARCH": arch, "BUILDVARIANT": variant,
		"TARGETPLATFORM": platform, "TARGETOS": osName, "TARGETARCH": arch, "TARGETVARIANT": variant,
	}
}

// argValue is an ARG in scope: declared, and with a value when it has one.
type argValue struct {
	name     string
	value    string
	hasValue bool
}

// metaArgs evaluates the ARGs before the first FROM: build args override
// their defaults; the platform args are always there.
func (df *dockerfile) evalMetaArgs(lex *shell.Lex, buildArgs map[string]string) ([]argValue, error) {
	var out []argValue
	for k, v := range platformArgs() {
		out = append(out, argValue{name: k, value: v, hasValue: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, cmd := range df.metaArgs {
		for _, kv := range cmd.Args {
			a := argValue{name: kv.Key}
			if v, ok := buildArgs[kv.Key]; ok {
				a.value, a.hasValue = v, true
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, argEnv(out))
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: ARG %s: %v", df.at(cmd.Location()), kv.Key, err))
				}
				a.value, a.hasValue = v, true
			}
			out = setArg(out, a)
		}
	}
	return out, nil
}

// setArg puts a in args, replacing an ARG of the same name.
func setArg(args []argValue, a argValue) []argValue {
	for i := range args {
		if args[i].name == a.name {
			args[i] = a
			return args
		}
	}
	return append(args, a)
}

// argEnv is the args with values as an environment for the lexer.
func argEnv(args []argValue) shell.EnvGetter {
	var env []string
	for _, a := range args {
		if a.hasValue {
			env = append(env, a.name+"="+a.value)
		}
	}
	return shell.EnvsFromSlice(env)
}

// findStage resolves name to a stage of the Dockerfile, by name (case
// insensitive) among the stages before index before, or by number.
func (df *dockerfile) findStage(name string, before int) (int, bool) {
	for i := 0; i < before && i < len(df.stages); i++ {
		if strings.EqualFold(df.stages[i].Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before && n < len(df.stages) {
		return n, true
	}
	return -1, false
}

// targetStage is the index of the stage to build.
func (df *dockerfile) targetStage(target string) (int, error) {
	if target == "" {
		return len(df.stages) - 1, nil
	}
	for i, s := range df.stages {
		if strings.EqualFold(s.Name, target) {
			return i, nil
		}
	}
	var names []string
	for _, s := range df.stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: target stage %q could not be found (stages: %s)", df.name, target, strings.Join(names, ", ")))
}

// stageName is how progress names a stage: its AS name, or stage-N.
func (df *dockerfile) stageName(i int) string {
	if df.stages[i].Name != "" {
		return df.stages[i].Name
	}
	return "stage-" + strconv.Itoa(i)
}

// isLayerStep reports whether an instruction may change files (and is
// shown as a numbered step, as BuildKit shows them).
func isLayerStep(c instructions.Command) bool {
	switch c.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
		return true
	}
	return false
}

// parseTriggers parses ONBUILD triggers of a base image into commands.
func parseTriggers(triggers []string) ([]instructions.Command, error) {
	var out []instructions.Command
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("ONBUILD %s: %w", t, err)
		}
		for _, n := range res.AST.Children {
			switch strings.ToUpper(n.Value) {
			case "ONBUILD", "FROM", "MAINTAINER":
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ONBUILD %s: %s is not allowed as an ONBUILD trigger", t, strings.ToUpper(n.Value)))
			}
			cmd, err := instructions.ParseCommand(n)
			if err != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ONBUILD %s: %v", t, err))
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}
