package build

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/engine/image"
)

// dispatch runs one instruction of a stage: variables expanded first with
// the stage's ARGs and ENVs, as BuildKit expands them.
func (j *job) dispatch(ctx context.Context, sr *stageRun, cmd instructions.Command) error {
	st := sr.st
	if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
		env := st.expandEnv()
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(func(word string) (string, error) {
				w, _, err := j.lex.ProcessWord(word, env)
				return w, err
			}); err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %v", cmd.Name(), err))
			}
		}
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
			raw := shell.NewLex('\\')
			raw.SkipProcessQuotes = true
			if err := ex.ExpandRaw(func(word string) (string, error) {
				w, _, err := raw.ProcessWord(word, env)
				return w, err
			}); err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %v", cmd.Name(), err))
			}
		}
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			st.config.Env = setEnv(st.config.Env, kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		j.metaStep(st, "ENV "+strings.Join(parts, " "))
	case *instructions.LabelCommand:
		var parts []string
		for _, kv := range c.Labels {
			if st.config.Labels == nil {
				st.config.Labels = map[string]string{}
			}
			st.config.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		j.metaStep(st, "LABEL "+strings.Join(parts, " "))
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
		j.metaStep(st, "MAINTAINER "+c.Maintainer)
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			w, _, err := j.lex.ProcessWord(p, st.expandEnv())
			if err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("EXPOSE %s: %v", p, err))
			}
			ps, err := exposedPorts(w)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
		}
		if st.config.ExposedPorts == nil {
			st.config.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			st.config.ExposedPorts[p] = struct{}{}
		}
		j.metaStep(st, "EXPOSE "+strings.Join(ports, " "))
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.ErrInvalidArgument.WithMessage("VOLUME: a volume cannot be an empty path")
			}
			if st.config.Volumes == nil {
				st.config.Volumes = map[string]struct{}{}
			}
			st.config.Volumes[v] = struct{}{}
		}
		j.metaStep(st, fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.UserCommand:
		st.config.User = c.User
		j.metaStep(st, "USER "+c.User)
	case *instructions.CmdCommand:
		st.config.Cmd = withShell(st.config, c.ShellDependantCmdLine)
		st.cmdSet = true
		j.metaStep(st, fmt.Sprintf("CMD %q", st.config.Cmd))
	case *instructions.EntrypointCommand:
		st.config.Entrypoint = withShell(st.config, c.ShellDependantCmdLine)
		if !st.cmdSet {
			st.config.Cmd = nil // an inherited CMD does not go with a new ENTRYPOINT
		}
		j.metaStep(st, fmt.Sprintf("ENTRYPOINT %q", st.config.Entrypoint))
	case *instructions.HealthCheckCommand:
		h := c.Health
		st.config.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		j.metaStep(st, fmt.Sprintf("HEALTHCHECK %q interval=%s timeout=%s start-period=%s retries=%d", h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries))
	case *instructions.StopSignalCommand:
		st.config.StopSignal = c.Signal
		j.metaStep(st, "STOPSIGNAL "+c.Signal)
	case *instructions.ShellCommand:
		st.config.Shell = c.Shell
		j.metaStep(st, fmt.Sprintf("SHELL %v", c.Shell))
	case *instructions.OnbuildCommand:
		st.config.OnBuild = append(st.config.OnBuild, c.Expression)
		j.metaStep(st, "ONBUILD "+c.Expression)
	case *instructions.ArgCommand:
		return j.dispatchArg(st, c)
	case *instructions.WorkdirCommand:
		return j.dispatchWorkdir(ctx, sr, c)
	case *instructions.RunCommand:
		return j.dispatchRun(ctx, sr, c)
	case *instructions.CopyCommand:
		return j.dispatchCopy(ctx, sr, copyOp{
			kind: "COPY", SourcesAndDest: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, excludes: c.ExcludePatterns, parents: c.Parents, text: commandString(c),
		})
	case *instructions.AddCommand:
		return j.dispatchCopy(ctx, sr, copyOp{
			kind: "ADD", SourcesAndDest: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, link: c.Link,
			excludes: c.ExcludePatterns, add: true, checksum: c.Checksum, unpack: c.Unpack, text: commandString(c),
		})
	default:
		return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s is not supported", cmd.Name()))
	}
	return nil
}

// metaStep records an instruction that changes only the configuration: a
// history entry with no layer, and the key moves on.
func (j *job) metaStep(st *state, createdBy string) {
	st.key = chainKey(st.key, createdBy)
	st.pending = append(st.pending, v1.History{Created: v1.Time{Time: j.epoch}, CreatedBy: createdBy, Comment: historyComment, EmptyLayer: true})
}

// dispatchArg declares build args in the stage: a --build-arg wins over
// the default, and an ARG without a default takes the global one.
func (j *job) dispatchArg(st *state, c *instructions.ArgCommand) error {
	for _, kv := range c.Args {
		j.declared[kv.Key] = true
		a := argValue{name: kv.Key}
		if v, ok := j.opts.Args[kv.Key]; ok {
			a.value, a.hasValue = v, true
		} else if kv.Value != nil {
			v, _, err := j.lex.ProcessWord(*kv.Value, st.expandEnv())
			if err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ARG %s: %v", kv.Key, err))
			}
			a.value, a.hasValue = v, true
		} else {
			for _, m := range j.meta {
				if m.name == kv.Key && m.hasValue {
					a.value, a.hasValue = m.value, true
				}
			}
		}
		st.args = setArg(st.args, a)
	}
	// The history shows the ARG as written: a value given with
	// --build-arg shows only in the RUN steps that see it, so that
	// changing it reruns those steps and no others.
	j.metaStep(st, strings.TrimSpace(commandString(c)))
	return nil
}

// dispatchWorkdir sets the working directory and makes it when missing,
// owned by the stage's user, as BuildKit does.
func (j *job) dispatchWorkdir(ctx context.Context, sr *stageRun, c *instructions.WorkdirCommand) error {
	st := sr.st
	p := c.Path
	if !path.IsAbs(p) {
		p = path.Join("/", st.config.WorkingDir, p)
	}
	p = path.Clean(p)
	st.config.WorkingDir = p
	createdBy := "WORKDIR " + p
	user := st.config.User
	return j.layerStep(ctx, sr, createdBy, createdBy, chainKey(st.key, createdBy), func(ctx context.Context, ws *workspace, _ *step) ([]string, error) {
		root, err := openFSRoot(ws.rootfs, true)
		if err != nil {
			return nil, err
		}
		defer root.close()
		if _, err := root.stat(p); err == nil {
			return nil, nil
		}
		own := owner{}
		if user != "" {
			u, err := lookupUser(root, user)
			if err != nil {
				return nil, err
			}
			own = owner{int(u.UID), int(u.GID)}
		}
		fd, err := root.mkdirAll(p, own)
		if err != nil {
			return nil, fmt.Errorf("WORKDIR %s: %w", p, err)
		}
		closeFD(fd)
		return nil, nil
	})
}

// layerStep runs a step that may change files: from the cache when its
// key is there, else do against a mount of the state, whose changes
// (less the mount targets do reports it made) become the step's layer.
func (j *job) layerStep(ctx context.Context, sr *stageRun, name, createdBy, key string, do func(context.Context, *workspace, *step) ([]string, error)) error {
	st := sr.st
	sr.n++
	j.result.Steps++
	ev := j.steps.begin(sr.stepName(name))
	hist := v1.History{Created: v1.Time{Time: j.epoch}, CreatedBy: createdBy, Comment: historyComment}
	apply := func(e cacheEntry) {
		if e.Empty {
			hist.EmptyLayer = true
			st.pending = append(st.pending, hist)
		} else {
			st.carrier, st.pending = e.Carrier, nil
		}
		st.key = key
	}
	if !j.opts.NoCache {
		if e, ok := j.b.cacheGet(ctx, key); ok && (e.Carrier != "" || e.Empty) {
			apply(e)
			j.result.Cached++
			ev.cached()
			return nil
		}
	}
	e, err := j.runLayerStep(ctx, st, hist, ev, do)
	if err != nil {
		ev.fail(err)
		return err
	}
	if err := j.b.cachePut(key, e); err != nil {
		j.b.log.Warn("builder: write cache entry", "err", err)
	}
	apply(e)
	ev.done()
	return nil
}

// runLayerStep does a step's work and stores its layer.
func (j *job) runLayerStep(ctx context.Context, st *state, hist v1.History, ev *step, do func(context.Context, *workspace, *step) ([]string, error)) (cacheEntry, error) {
	ws, err := j.b.mountState(ctx, st.carrier)
	if err != nil {
		return cacheEntry{}, err
	}
	defer func() {
		if err := ws.release(); err != nil {
			j.b.log.Warn("builder: remove step workspace", "dir", ws.dir, "err", err)
		}
	}()
	stubs, err := do(ctx, ws, ev)
	if err != nil {
		return cacheEntry{}, err
	}
	if err := ws.unmount(); err != nil {
		return cacheEntry{}, err
	}
	entries, err := scanUpper(ws.upper)
	if err != nil {
		return cacheEntry{}, err
	}
	entries = withoutStubs(entries, ws.lower, stubs)
	if len(entries) == 0 {
		return cacheEntry{Empty: true}, nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLayer(pw, ws.upper, entries, &j.epoch)) }()
	base := st.carrier
	if base == "" {
		base = "scratch"
	}
	img, err := j.b.images.Create(ctx, image.CreateOptions{
		Base: base, Layers: []image.NewLayer{{Tar: pr}}, Config: st.config,
		History: append(st.pending[:len(st.pending):len(st.pending)], hist), Created: j.epoch,
		Author: st.author, Lease: CacheHolder,
	})
	pr.CloseWithError(io.ErrClosedPipe) // ends the writer if Create stopped reading
	if err != nil {
		return cacheEntry{}, fmt.Errorf("store layer: %w", err)
	}
	return cacheEntry{Carrier: img.ID}, nil
}

// expandEnv is what variables expand to in an instruction: the ARGs in
// scope, overridden by the ENVs.
func (st *state) expandEnv() shell.EnvGetter {
	var env []string
	for _, a := range st.args {
		if a.hasValue {
			env = append(env, a.name+"="+a.value)
		}
	}
	return shell.EnvsFromSlice(append(env, st.config.Env...))
}

// setEnv sets KEY=VALUE in env, replacing an earlier KEY.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if key, _, _ := strings.Cut(e, "="); key == k {
			env = append(env[:i:i], env[i+1:]...)
			break
		}
	}
	return append(env, k+"="+v)
}

// lookupEnv finds KEY in a KEY=VALUE list.
func lookupEnv(env []string, k string) (string, bool) {
	for _, e := range env {
		if key, v, _ := strings.Cut(e, "="); key == k {
			return v, true
		}
	}
	return "", false
}

// withShell is the argv of a RUN, CMD or ENTRYPOINT: exec form as given,
// shell form after the stage's SHELL (default /bin/sh -c).
func withShell(cfg v1.Config, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
}

// exposedPorts reads an EXPOSE word: 80, 80/udp, 8000-8002/tcp.
func exposedPorts(word string) ([]string, error) {
	spec, proto, _ := strings.Cut(word, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("EXPOSE %s: unknown protocol %q", word, proto))
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || first == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("EXPOSE %s: invalid port", word))
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("EXPOSE %s: invalid port range", word))
		}
	}
	var out []string
	for p := first; p <= last; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	sort.Strings(out)
	return out, nil
}
