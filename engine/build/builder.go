package build

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/progress"
	"github.com/berth-dev/berth/internal/spreaddirs"
)

// historyComment marks the history entries a Dockerfile build wrote, as
// BuildKit marks its own "buildkit.dockerfile.v0".
const historyComment = "berth.dockerfile.v0"

// Builder builds images from Dockerfiles into one image store. Its methods
// may be called from many goroutines; builds run independently and share
// the cache.
type Builder struct {
	dir    string // ROOT/build
	images *image.Store
	rt     *runtime.Runtime
	log    *slog.Logger
}

// New opens the builder of a state root, taking away what an interrupted
// build left behind (mounts, RUN containers, scratch directories).
func New(ctx context.Context, cfg Config) (*Builder, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &Builder{dir: filepath.Join(cfg.Root, "build"), images: cfg.Images, rt: cfg.Runtime, log: cfg.Log}
	for _, sub := range []string{"cache", "hashes", "tmp", "mounts"} {
		if err := os.MkdirAll(filepath.Join(b.dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	}
	// A build's scratch trees live as long as the build (see spreaddirs).
	_ = spreaddirs.Mark(filepath.Join(b.dir, "tmp"))
	if err := b.cleanLeftovers(ctx); err != nil {
		b.log.Warn("builder: cleaning what an interrupted build left", "err", err)
	}
	return b, nil
}

// state is a stage's build state after some of its instructions.
type state struct {
	// carrier is the image holding the state's layers; "" has none.
	carrier string
	// pending are the history entries made since the carrier.
	pending []v1.History
	config  v1.Config
	author  string
	// key is the cache key of the state: it covers every step so far.
	key string
	// args are the ARGs in scope, in declaration order.
	args   []argValue
	cmdSet bool // CMD was set in this stage (ENTRYPOINT then keeps it)
}

// stageRun is one stage as it is built.
type stageRun struct {
	index int
	label string // "web", "web builder": how step names start
	st    *state
	n     int // numbered steps shown so far
	total int
}

// job is one build.
type job struct {
	b    *Builder
	opts Options
	df   *dockerfile
	lex  *shell.Lex
	tree *srcTree
	// contexts are the directories of named contexts, opened like tree.
	contexts map[string]*srcTree
	epoch    time.Time
	steps    *steps
	meta     []argValue
	stages   []*stageRun
	active   map[int]bool // stages being built, to refuse cycles
	result   Result
	// declared are the ARG names the built stages declare.
	declared map[string]bool
}

// Build builds the image opts describe and names it with opts.Tags, only
// once everything else worked: a failed build leaves no name changed.
func (b *Builder) Build(ctx context.Context, opts Options) (Result, error) {
	if opts.Context == "" {
		return Result{}, errdefs.ErrInvalidArgument.WithMessage("build: no context directory")
	}
	epoch, err := epochOf(opts)
	if err != nil {
		return Result{}, err
	}
	df, err := readDockerfile(opts)
	if err != nil {
		return Result{}, err
	}
	switch opts.Network {
	case "", "default", "host", "none":
	default:
		return Result{}, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("build network %q: berth builds with the host's network (default, host) or none", opts.Network))
	}
	dfPath := ""
	if opts.DockerfileInline == "" {
		dfPath = dockerfilePath(opts)
	}
	tree, err := openContext(opts.Context, dfPath, nil)
	if err != nil {
		return Result{}, err
	}
	defer tree.close()
	tree.hashes = b.loadHashCache(tree.root.dir)
	named, err := b.openNamedContexts(opts.NamedContexts)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, t := range named {
			if serr := t.hashes.save(); serr != nil {
				b.log.Warn("builder: remember file hashes", "err", serr)
			}
			t.close()
		}
	}()
	j := &job{
		b: b, opts: opts, df: df, lex: shell.NewLex(df.escape), tree: tree, contexts: named, epoch: epoch,
		steps: &steps{sink: opts.Sink}, stages: make([]*stageRun, len(df.stages)),
		active: map[int]bool{}, declared: map[string]bool{},
	}
	if j.meta, err = df.evalMetaArgs(j.lex, opts.Args); err != nil {
		return Result{}, err
	}
	for _, a := range df.metaArgs {
		for _, kv := range a.Args {
			j.declared[kv.Key] = true
		}
	}
	target, err := df.targetStage(opts.Target)
	if err != nil {
		return Result{}, err
	}
	sr, err := j.stage(ctx, target)
	if err == nil {
		err = j.export(ctx, sr)
	}
	if serr := tree.hashes.save(); serr != nil {
		b.log.Warn("builder: remember file hashes", "err", serr)
	}
	if err != nil {
		return Result{}, err
	}
	j.warnUnusedArgs()
	return j.result, nil
}

// stage builds stage i (and the stages it needs) once.
func (j *job) stage(ctx context.Context, i int) (*stageRun, error) {
	if sr := j.stages[i]; sr != nil {
		return sr, nil
	}
	s := &j.df.stages[i]
	if j.active[i] {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: stage %s depends on itself", j.df.at(s.Location), j.df.stageName(i)))
	}
	j.active[i] = true
	defer delete(j.active, i)
	sr := &stageRun{index: i, label: j.stageLabel(i)}
	base, _, err := j.lex.ProcessWord(s.BaseName, argEnv(j.meta))
	if err != nil || base == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: FROM %s: base name expands to nothing (%v)", j.df.at(s.Location), s.BaseName, err))
	}
	var fromText string
	switch k, isStage := j.df.findStage(base, i); {
	case isStage:
		parent, err := j.stage(ctx, k)
		if err != nil {
			return nil, err
		}
		p := parent.st
		sr.st = &state{
			carrier: p.carrier, pending: slices.Clone(p.pending), config: cloneConfig(p.config),
			author: p.author, key: chainKey(p.key, "FROM stage"),
		}
		fromText = "FROM " + j.df.stageName(k)
	case strings.EqualFold(base, "scratch"):
		sr.st = &state{key: chainKey("", "FROM scratch", j.epoch.String())}
		fromText = "FROM scratch"
	default:
		img, err := j.baseImage(ctx, base)
		if err != nil {
			return nil, fmt.Errorf("%s: FROM %s: %w", j.df.at(s.Location), base, err)
		}
		sr.st = &state{carrier: img.ID, config: cloneConfig(img.Config.Config), author: img.Config.Author,
			key: chainKey("", "FROM", img.ID, j.epoch.String())}
		shown := base
		if ref, ok := strings.CutPrefix(j.opts.NamedContexts[base], dockerImagePrefix); ok {
			shown = ref // a named context: the image it stands for
		}
		fromText = "FROM " + shown
		if n, err := image.NormalizeReference(shown); err == nil {
			fromText = "FROM " + n
		}
	}
	if platform, _, _ := j.lex.ProcessWord(s.Platform, argEnv(j.meta)); platform != "" && platform != platformArgs()["TARGETPLATFORM"] {
		j.steps.warn(fmt.Sprintf("%s: FROM --platform=%s: berth builds for this host's platform only", j.df.at(s.Location), platform))
	}
	// A base's ONBUILD triggers run first, and the new image does not
	// inherit them.
	triggers, err := parseTriggers(sr.st.config.OnBuild)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.df.at(s.Location), err)
	}
	sr.st.config.OnBuild = nil
	cmds := append(triggers, s.Commands...)
	sr.total = 1
	for _, c := range cmds {
		if isLayerStep(c) {
			sr.total++
		}
	}
	sr.n = 1
	j.steps.begin(sr.stepName(fromText)).cached()
	for ci, c := range cmds {
		if err := j.dispatch(ctx, sr, c); err != nil {
			loc := j.df.at(c.Location())
			if ci < len(triggers) {
				loc = j.df.at(s.Location) + " (ONBUILD of the base)"
			}
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
	}
	j.stages[i] = sr
	return sr, nil
}

// stageLabel is how the steps of stage i are named: by the build's name
// and, when the Dockerfile has several stages, the stage's.
func (j *job) stageLabel(i int) string {
	var parts []string
	if j.opts.Name != "" {
		parts = append(parts, j.opts.Name)
	}
	if len(j.df.stages) > 1 {
		parts = append(parts, j.df.stageName(i))
	}
	return strings.Join(parts, " ")
}

// stepName is "[web builder 2/5] RUN make".
func (sr *stageRun) stepName(text string) string {
	prefix := ""
	if sr.label != "" {
		prefix = sr.label + " "
	}
	return fmt.Sprintf("[%s%d/%d] %s", prefix, sr.n, sr.total, text)
}

// named prefixes a step that belongs to no stage with the build's name,
// so that the builds of several services show apart: "[web] exporting".
func (j *job) named(text string) string {
	if j.opts.Name == "" {
		return text
	}
	return "[" + j.opts.Name + "] " + text
}

// baseImage finds a FROM image in the store, pulling it when it is missing
// or when the build asks to pull.
func (j *job) baseImage(ctx context.Context, ref string) (image.Image, error) {
	if v, ok := j.opts.NamedContexts[ref]; ok {
		img, isImage := strings.CutPrefix(v, dockerImagePrefix)
		if !isImage {
			return image.Image{}, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("context %s is a directory: it can be copied from, not built on", ref))
		}
		ref = img
	}
	if !j.opts.Pull {
		img, err := j.b.images.Resolve(ctx, ref)
		if err == nil || !errdefs.IsNotFound(err) {
			return img, err
		}
	}
	id := "pulling " + ref
	progress.Emit(j.opts.Sink, progress.WorkingEvent(id, "Pulling"))
	img, err := j.b.images.Pull(ctx, ref, image.PullOptions{Sink: func(ev image.Event) {
		progress.Emit(j.opts.Sink, progress.Event{ID: ev.ID, ParentID: id, Status: progress.Working, Text: ev.Status, Current: ev.Current, Total: ev.Total})
	}})
	if err != nil {
		progress.Emit(j.opts.Sink, progress.ErrorEvent(id, err))
		return img, err
	}
	progress.Emit(j.opts.Sink, progress.DoneEvent(id, "Pulled"))
	return img, nil
}

// export makes the final image from the target stage's state and names
// it. Its key covers the configuration too: a build with nothing changed
// finds the image and writes nothing.
func (j *job) export(ctx context.Context, sr *stageRun) error {
	st := sr.st
	cfg := cloneConfig(st.config)
	if len(j.opts.Labels) > 0 && cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range j.opts.Labels {
		cfg.Labels[k] = v
	}
	var tags []string
	for _, t := range j.opts.Tags {
		n, err := image.NormalizeReference(t)
		if err != nil {
			return err
		}
		if !slices.Contains(tags, n) {
			tags = append(tags, n)
		}
	}
	sort.Strings(tags)
	ev := j.steps.begin(j.named("exporting to image"))
	cfgJSON, _ := json.Marshal(cfg)
	key := chainKey(st.key, "export", string(cfgJSON), st.author)
	var img image.Image
	if e, ok := j.b.cacheGet(ctx, key); ok && e.Image != "" && !j.opts.NoCache {
		var err error
		if img, err = j.b.images.Resolve(ctx, e.Image); err == nil {
			for _, t := range tags {
				if !slices.Contains(img.RepoTags, t) {
					if err = j.b.images.Tag(ctx, img.ID, t); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			ev.fail(err)
			return err
		}
		img.RepoTags = tags
	} else {
		base := st.carrier
		if base == "" {
			base = "scratch"
		}
		var err error
		img, err = j.b.images.Create(ctx, image.CreateOptions{
			Base: base, Config: cfg, History: st.pending, Created: j.epoch, Author: st.author, Tags: tags,
		})
		if err != nil {
			ev.fail(err)
			return fmt.Errorf("export image: %w", err)
		}
		if err := j.b.cachePut(key, cacheEntry{Image: img.ID}); err != nil {
			j.b.log.Warn("builder: write cache entry", "err", err)
		}
	}
	ev.done()
	for _, t := range tags {
		j.steps.begin(j.named("naming to " + image.Familiar(t))).done()
	}
	j.result.ImageID, j.result.Digest, j.result.Tags = img.ID, img.Manifest.Digest.String(), tags
	return nil
}

// warnUnusedArgs says which build args no ARG declared, as docker does.
func (j *job) warnUnusedArgs() {
	var unused []string
	for k := range j.opts.Args {
		if !j.declared[k] && !proxyArgs[k] && k != "SOURCE_DATE_EPOCH" {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		j.steps.warn(fmt.Sprintf("One or more build-args %v were not consumed", unused))
	}
}

// cloneConfig copies a run configuration deeply enough that changing the
// copy's maps and slices leaves the original alone.
func cloneConfig(c v1.Config) v1.Config {
	c.Cmd, c.Entrypoint, c.Env, c.OnBuild, c.Shell = slices.Clone(c.Cmd), slices.Clone(c.Entrypoint), slices.Clone(c.Env), slices.Clone(c.OnBuild), slices.Clone(c.Shell)
	if c.Labels != nil {
		m := make(map[string]string, len(c.Labels))
		for k, v := range c.Labels {
			m[k] = v
		}
		c.Labels = m
	}
	for _, p := range []*map[string]struct{}{&c.Volumes, &c.ExposedPorts} {
		if *p != nil {
			m := make(map[string]struct{}, len(*p))
			for k := range *p {
				m[k] = struct{}{}
			}
			*p = m
		}
	}
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	return c
}

// commandString is how errors and history show a dispatched instruction.
func commandString(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// dockerImagePrefix marks a named context that stands for an image.
const dockerImagePrefix = "docker-image://"

// openNamedContexts opens the named contexts that are directories; the
// images are resolved when a step names them. Other kinds (git, https,
// oci-layout) are refused.
func (b *Builder) openNamedContexts(contexts map[string]string) (map[string]*srcTree, error) {
	named := map[string]*srcTree{}
	closeAll := func() {
		for _, t := range named {
			t.close()
		}
	}
	for name, v := range contexts {
		if strings.HasPrefix(v, dockerImagePrefix) {
			continue
		}
		if strings.Contains(v, "://") || !filepath.IsAbs(v) {
			closeAll()
			return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("context %s=%s: a named context is an absolute directory or docker-image://REF", name, v))
		}
		t, err := openContext(v, "", nil)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("context %s: %w", name, err)
		}
		t.label = "context " + name
		t.hashes = b.loadHashCache(t.root.dir)
		named[name] = t
	}
	return named, nil
}
