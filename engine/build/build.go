// Package build turns a Dockerfile and a build context into an image of
// berth's image store, as `docker build` does, with a layer cache that makes
// a rebuild with nothing changed do no layer work at all.
//
// # How a build runs
//
// The Dockerfile is parsed with BuildKit's parser and instruction package;
// variables are expanded with its shell lexer, so quoting, ${VAR:-default}
// and heredocs mean what they mean to docker. The stages the target needs
// (its base, the stages COPY --from and RUN --mount name) are built in
// dependency order; the others are skipped, as BuildKit skips them.
//
// Each stage keeps a state: the image that holds its layers so far (its
// "carrier": the FROM image, then one image per layer step, all in the
// store), the history entries made since, its run configuration (Env, Cmd,
// User, WorkingDir...) and a cache key. An instruction that changes files
// (RUN, COPY, ADD, and WORKDIR when the directory is missing) runs against
// an overlay mount of the carrier's snapshots with a fresh upper dir:
//
//	ROOT/build/tmp/STEP/upper   the step's changes
//	ROOT/build/tmp/STEP/bundle  rootfs (the overlay) and config.json for RUN
//
// RUN executes the command in a real container made by engine/runtime, as a
// child of the builder's process, with the build's network; COPY and ADD
// write into the overlay through file descriptors resolved inside the root
// (openat2 RESOLVE_IN_ROOT), so an image's symlinks never lead outside it.
// The upper dir then becomes the new layer (layer_linux.go): a tar with
// overlayfs whiteouts turned into .wh. entries, sorted, uid/gid kept,
// mtimes clamped to the build's epoch, no atime or ctime. A step that
// changed nothing makes no layer, and metadata-only instructions (ENV,
// LABEL, CMD...) only add history entries marked empty_layer.
//
// # Cache
//
// A step's cache key is a hash of its parent's key (the FROM image's ID at
// the start), the instruction after expansion, the build args it uses (a
// RUN sees every ARG in scope, so all of them count), and for COPY and ADD
// the content, modes and link targets of the files it copies. Entries live
// in ROOT/build/cache/KEY.json and name the carrier image the step made (or
// say that it made no layer); carriers are leased to the holder
// "berth-build-cache", so image prune keeps them until Prune. File content
// hashes are remembered by path, size, mtime, ctime and inode per context
// (ROOT/build/hashes), so a cached build reads no file it has seen before.
// The final image's key also covers its configuration and names, so a fully
// cached rebuild writes nothing at all.
//
// Because each step's key covers the whole chain before it, changing a
// LABEL or ENV reruns the layer steps after it (as docker's classic builder
// does); changing a build arg's value reruns only the RUN steps that see it
// and the steps after them.
//
// # Reproducibility
//
// The same context, Dockerfile and args give the same image digest in any
// store. Every timestamp the build writes (layer entries' mtimes, history
// entries, the image's created time) is clamped to the build's epoch:
// SOURCE_DATE_EPOCH when given (Options.SourceDateEpoch, or the build arg
// of that name, as BuildKit takes it), else the Unix epoch, 1970-01-01, as
// ko and apko do. BuildKit without SOURCE_DATE_EPOCH uses the wall clock
// and keeps files' mtimes; berth chose reproducible by default.
//
// # Network
//
// RUN steps share the host's network namespace by default, as BuildKit
// does with `network: host`: outbound access works with no bridge or NAT
// to set up, and the host's /etc/resolv.conf is bind-mounted read-only.
// `network: none` (or RUN --network=none) gives the step its own empty
// network namespace with only loopback. Docker's default builds use a
// bridge instead; berth does not, since a build's RUN needs no inbound
// connectivity and a bridge per step would cost more than the step.
package build

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/progress"
)

// Config says what a Builder works with.
type Config struct {
	// Root is the engine's state root; the builder keeps ROOT/build.
	Root   string
	Images *image.Store
	// Runtime runs the RUN steps' containers, as children of this process.
	Runtime *runtime.Runtime
	Log     *slog.Logger
}

// Options describe one build: docker build's flags and Compose's build keys.
type Options struct {
	// Context is the build context directory.
	Context string `json:"context"`
	// Dockerfile is the Dockerfile's path, relative to Context unless
	// absolute; default "Dockerfile".
	Dockerfile string `json:"dockerfile,omitempty"`
	// DockerfileInline is the Dockerfile's text; it wins over Dockerfile.
	DockerfileInline string `json:"dockerfile_inline,omitempty"`
	// Args are the build args (--build-arg, Compose build.args).
	Args map[string]string `json:"args,omitempty"`
	// Target is the stage to build; default the last one.
	Target string `json:"target,omitempty"`
	// Labels are added to the image's labels, over the Dockerfile's.
	Labels map[string]string `json:"labels,omitempty"`
	// Tags name the image; they are set at the very end, all at once.
	Tags []string `json:"tags,omitempty"`
	// NoCache runs every step again (the new results still fill the cache).
	NoCache bool `json:"no_cache,omitempty"`
	// Pull pulls the FROM images even when the store has them.
	Pull bool `json:"pull,omitempty"`
	// Network of RUN steps: "" or "default" (the host's), "host" or "none".
	Network string `json:"network,omitempty"`
	// ExtraHosts are HOST:IP lines added to RUN steps' /etc/hosts.
	ExtraHosts []string `json:"extra_hosts,omitempty"`
	// ShmSize is the size of RUN steps' /dev/shm in bytes; 0 is 64 MiB.
	ShmSize int64 `json:"shm_size,omitempty"`
	// NamedContexts are buildx's --build-context and Compose's
	// additional_contexts: NAME to an absolute directory, which COPY
	// --from=NAME reads like the build context, or to docker-image://REF,
	// which FROM NAME and --from=NAME take for the image REF.
	NamedContexts map[string]string `json:"named_contexts,omitempty"`
	// Secrets are what RUN --mount=type=secret,id=ID reads, by ID
	// (Compose's build.secrets). They are in no cache key and no layer.
	Secrets map[string][]byte `json:"secrets,omitempty"`
	// SourceDateEpoch, when set, is the build's epoch (see the package
	// doc); otherwise the SOURCE_DATE_EPOCH build arg, else 1970-01-01.
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`
	// Name prefixes the step names in progress events ("[web 2/4] RUN ...").
	Name string `json:"name,omitempty"`
	// Sink receives one event per step, and the output of RUN steps.
	Sink progress.Sink `json:"-"`
}

// Result is what a build made.
type Result struct {
	// ImageID is the new image's ID (the digest of its config).
	ImageID string `json:"id"`
	// Digest is the digest of its manifest.
	Digest string `json:"digest"`
	// Tags are the names the image got, normalised.
	Tags []string `json:"tags,omitempty"`
	// Steps counts the steps that make a layer or may (RUN, COPY, ADD,
	// WORKDIR); Cached those of them the cache answered; the others ran.
	Steps  int `json:"steps"`
	Cached int `json:"cached"`
}

// Change is one line of `container diff`: a path added, changed or deleted
// in a container's writable layer.
type Change struct {
	Kind ChangeKind `json:"Kind"`
	Path string     `json:"Path"`
}

// ChangeKind is what happened to a path, with docker's numbers.
type ChangeKind int

const (
	Modified ChangeKind = 0
	Added    ChangeKind = 1
	Deleted  ChangeKind = 2
)

// String is docker diff's letter: C, A or D.
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "A"
	case Deleted:
		return "D"
	}
	return "C"
}

// CommitOptions describe an image made from a container's writable layer.
type CommitOptions struct {
	// Reference names the new image; empty leaves it untagged.
	Reference string `json:"reference,omitempty"`
	// Comment and Author are `commit -m` and `-a`.
	Comment string `json:"comment,omitempty"`
	Author  string `json:"author,omitempty"`
	// Changes are Dockerfile instructions applied to the configuration
	// (`--change`): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
	// VOLUME, STOPSIGNAL, ONBUILD, HEALTHCHECK.
	Changes []string `json:"changes,omitempty"`
	// Pause freezes a running container while its layer is read (the
	// CLI's default, as docker's); the caller of Commit does the freezing.
	Pause bool `json:"pause,omitempty"`
}

// Layer is a container's writable layer, as Changes and Commit read it.
type Layer struct {
	// Upper is the overlay upper dir holding the changes.
	Upper string
	// Lower are the image's snapshot dirs, topmost first.
	Lower []string
	// Mountpoints are paths the engine created as mount targets (the
	// /etc files, /proc, /dev...); left empty, they are not changes.
	Mountpoints []string
}

// CommitSource is the container side of a commit: its layer, the image it
// was made from and its run configuration.
type CommitSource struct {
	Layer   Layer
	ImageID string
	// Config is the container's configuration over the image's (Env, Cmd,
	// Entrypoint, User, WorkingDir...); docker commit keeps it.
	Config v1.Config
	// CreatedBy is the container's command, for the history entry.
	CreatedBy string
}

// Errors of a build carry errdefs classes: a Dockerfile that does not
// parse or make sense, and a COPY source that leads outside the context,
// are invalid arguments ("Dockerfile:7: ..."); a missing COPY source is not
// found; a failed RUN is a RunError, a failed precondition.

// RunError is a RUN step whose command failed: its exit code and the last
// lines it printed.
type RunError struct {
	Step     string // "[2/3] RUN make"
	Command  []string
	ExitCode int
	Output   string // the tail of stdout and stderr
}

func (e *RunError) Error() string {
	msg := fmt.Sprintf("%s: process %q did not complete successfully: exit code: %d", e.Step, joinArgs(e.Command), e.ExitCode)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	return msg
}

// Is classes a failed RUN as a failed precondition (the build's input, not
// the engine, is at fault).
func (e *RunError) Is(target error) bool { return target == errdefs.ErrFailedPrecondition }

// epochOf returns the build's epoch: opts' or the SOURCE_DATE_EPOCH arg's,
// else the Unix epoch.
func epochOf(opts Options) (time.Time, error) {
	if opts.SourceDateEpoch != nil {
		return time.Unix(*opts.SourceDateEpoch, 0).UTC(), nil
	}
	if v, ok := opts.Args["SOURCE_DATE_EPOCH"]; ok && v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return time.Time{}, errors.Join(errdefs.ErrInvalidArgument, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", v))
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}
