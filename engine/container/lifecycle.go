package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/failpoint"
)

const defaultStopTimeout = 10 * time.Second

// anonymousOwner labels the anonymous volumes made for a container, so
// that a create that crashed half-way can find and remove them.
const anonymousOwner = "dev.berth.container"

func readJSON(path string, v any) error { return atomicfile.ReadJSON(path, v) }

// Create makes a container from cfg: its record, its image lease and its
// anonymous volumes. It does not start it.
func (m *Manager) Create(ctx context.Context, cfg Config) (Container, error) {
	id := newID()
	if cfg.Name == "" {
		cfg.Name = "berth_" + id[:12]
	}
	cfg.Name = strings.TrimPrefix(cfg.Name, "/")
	if !validName.MatchString(cfg.Name) {
		return Container{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", cfg.Name))
	}
	if err := validate(cfg); err != nil {
		return Container{}, err
	}
	m.mu.Lock()
	if other, ok := m.names[cfg.Name]; ok {
		m.mu.Unlock()
		return Container{}, errdefs.ErrConflict.WithMessage(nameInUse(cfg.Name, other))
	}
	m.names[cfg.Name] = id // reserved; released if create fails
	m.mu.Unlock()

	c, syncRecord, err := m.create(ctx, id, cfg)
	if err != nil {
		m.mu.Lock()
		delete(m.names, cfg.Name)
		m.mu.Unlock()
		return Container{}, fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	e := &entry{c: c, exited: make(chan struct{}), synced: make(chan struct{})}
	close(e.exited)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(e.synced)
		if err := syncRecord(); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("sync the record of a new container", "container", c.Name, "err", err)
		}
	}()
	m.mu.Lock()
	m.containers[id] = e
	m.mu.Unlock()
	m.emit(c, "create", nil)
	return *c, nil
}

func (m *Manager) create(ctx context.Context, id string, cfg Config) (c *Container, syncRecord func() error, err error) {
	// First of all: the stage's start-up is the longest part of a start.
	prepared := m.prepare(id, cfg)
	dir := m.dir(id)
	defer func() {
		// Answered before create returns: the start's create, on another
		// connection, must find the stage reserved.
		<-prepared
		if err != nil {
			_ = m.monitor.Discard(context.Background(), id)
			_ = m.unmountRootfs(id)
			_ = m.images.Release(context.Background(), id)
			os.RemoveAll(dir)
		}
	}()
	ahead := m.takeAheadDir(dir)
	if !ahead {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, nil, err
		}
	}
	imageID, img, err := m.images.Lookup(ctx, cfg.Image)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Healthcheck == nil || len(cfg.Healthcheck.Test) == 0 {
		cfg.Healthcheck = imageHealthcheck(img.Config.Healthcheck, cfg.Healthcheck)
	}
	path, args := command(cfg, img.Config.Entrypoint, img.Config.Cmd)
	if path == "" {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage("no command specified: the image has no entrypoint or command, and none was given")
	}
	c = &Container{
		ID: id, Name: cfg.Name, Created: time.Now().UTC(), Config: cfg, ImageID: imageID,
		Path: path, Args: args, State: State{Status: Created},
		LogPath: filepath.Join(dir, "container.log"),
	}
	// Anonymous volumes: mounts without a source and the image's VOLUMEs
	// that no mount covers.
	targets := map[string]bool{}
	for _, mt := range cfg.Mounts {
		targets[filepath.Clean(mt.Target)] = true
	}
	var anon []string
	for _, mt := range cfg.Mounts {
		if mt.Type != MountVolume {
			continue
		}
		if mt.Source == "" {
			anon = append(anon, filepath.Clean(mt.Target))
			continue
		}
		// An anonymous volume handed over from a replaced container stays
		// anonymous: rm -v and down -v remove it with this one.
		if v, err := m.volumes.Get(mt.Source); err == nil && v.Anonymous {
			if c.AnonymousVolumes == nil {
				c.AnonymousVolumes = map[string]string{}
			}
			c.AnonymousVolumes[filepath.Clean(mt.Target)] = v.Name
		}
	}
	for target := range img.Config.Volumes {
		if !targets[filepath.Clean(target)] {
			anon = append(anon, filepath.Clean(target))
		}
	}
	for _, target := range anon {
		v, err := m.volumes.Create(volume.CreateOptions{Anonymous: true, Labels: map[string]string{anonymousOwner: id}})
		if err != nil {
			m.removeAnonymousVolumes(c)
			return nil, nil, err
		}
		if c.AnonymousVolumes == nil {
			c.AnonymousVolumes = map[string]string{}
		}
		c.AnonymousVolumes[target] = v.Name
	}
	if err := failpoint.Inject("container/create-before-record"); err != nil {
		m.removeAnonymousVolumes(c)
		return nil, nil, err
	}
	// The image's lease is in memory: restore leases again from the
	// records. The root filesystem's mount (which the start would make
	// otherwise) takes place while the record is written.
	if _, err := m.images.LeaseInMemory(ctx, id, imageID); err != nil {
		m.removeAnonymousVolumes(c)
		return nil, nil, err
	}
	mounted := make(chan error, 1)
	go func() { mounted <- m.mountImage(ctx, id, imageID) }()
	syncRecord, saveErr := m.writeNew(c, ahead)
	if err := errors.Join(<-mounted, saveErr); err != nil {
		if syncRecord != nil {
			_ = syncRecord()
		}
		m.removeAnonymousVolumes(c)
		return nil, nil, err
	}
	return c, syncRecord, nil
}

// prepare has the monitor start the container's setup stage now
// (runtime.Prepare): its clone and start-up, about half of the runtime's
// create, then overlap the rest of this create, the client's start
// request, and the start's own work before the monitor's create. The
// channel closes once the monitor answered. A container that joins
// another's pid or ipc namespace is not prepared: the stage enters those
// before its clone.
func (m *Manager) prepare(id string, cfg Config) <-chan struct{} {
	done := make(chan struct{})
	if strings.HasPrefix(cfg.PidMode, "container:") || strings.HasPrefix(cfg.IpcMode, "container:") {
		close(done)
		return done
	}
	netns := ""
	if mode := cfg.NetworkMode; mode != "host" && mode != "none" {
		netns = "joined" // a bridge network's sandbox or another container's: named at start
	}
	req := monitor.Request{ID: id, Namespaces: specNamespaces(cfg, netns), Stdin: cfg.OpenStdin, Terminal: cfg.Tty}
	go func() {
		defer close(done)
		// A bet, not a step of the create: it must not hold the create up
		// when the monitor is slow to answer (an upgrade in progress).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := m.monitor.Prepare(ctx, req); err != nil {
			m.log.Debug("prepare setup stage", "container", id, "err", err)
		}
	}()
	return done
}

// imageHealthcheck is the image's HEALTHCHECK, with the timings of over
// (a Compose healthcheck without a test) where set.
func imageHealthcheck(h *v1.HealthConfig, over *Healthcheck) *Healthcheck {
	if h == nil || len(h.Test) == 0 {
		return over
	}
	hc := &Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	if over != nil {
		if over.Interval > 0 {
			hc.Interval = over.Interval
		}
		if over.Timeout > 0 {
			hc.Timeout = over.Timeout
		}
		if over.StartPeriod > 0 {
			hc.StartPeriod = over.StartPeriod
		}
		if over.StartInterval > 0 {
			hc.StartInterval = over.StartInterval
		}
		if over.Retries > 0 {
			hc.Retries = over.Retries
		}
	}
	return hc
}

// command works out the process from the config and the image, as docker
// does: an entrypoint given in the config drops the image's command.
func command(cfg Config, imageEntrypoint, imageCmd []string) (string, []string) {
	entrypoint, cmd := imageEntrypoint, imageCmd
	if cfg.Entrypoint != nil {
		entrypoint, cmd = cfg.Entrypoint, nil
	}
	if cfg.Cmd != nil {
		cmd = cfg.Cmd
	}
	all := append(append([]string{}, entrypoint...), cmd...)
	if len(all) == 0 {
		return "", nil
	}
	return all[0], all[1:]
}

func validate(cfg Config) error {
	switch cfg.RestartPolicy.Name {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid restart policy %q", cfg.RestartPolicy.Name))
	}
	if cfg.AutoRemove && cfg.RestartPolicy.Name != "" && cfg.RestartPolicy.Name != "no" {
		// As docker's: removed at its exit, it could not be restarted.
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("conflicting options: a container removed when it exits (--rm) cannot have restart policy %q", cfg.RestartPolicy.Name))
	}
	if t := cfg.Log.Type; t != "" && t != "json-file" && t != "local" {
		return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("logging driver %q is not supported (json-file only)", t))
	}
	if _, err := logs.ParseOptions(cfg.Log.Config); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	for _, mt := range cfg.Mounts {
		if !filepath.IsAbs(mt.Target) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount target %q is not an absolute path", mt.Target))
		}
	}
	return nil
}

func (m *Manager) removeAnonymousVolumes(c *Container) {
	for _, name := range c.AnonymousVolumes {
		_ = m.volumes.Remove(name, nil, true)
	}
}

// Start runs a created or exited container.
func (m *Manager) Start(ctx context.Context, ref string) error {
	e, err := m.lookup(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	if e.c.State.Status == Running || e.c.State.Status == Paused {
		return nil // docker start of a running container is a no-op
	}
	if e.removing {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot start container %s: it is marked for removal", e.c.Name))
	}
	if e.restartTimer != nil {
		e.restartTimer.Stop()
		e.restartTimer = nil
	}
	// As docker's: a user's start begins the policy's count again (on-failure:N
	// gets its N retries back).
	e.c.State.StoppedByUser, e.c.RestartCount = false, 0
	return m.start(ctx, e)
}

// start brings e's container up; e.op is held. On failure everything it
// made is undone and the container is left exited with the error.
func (m *Manager) start(ctx context.Context, e *entry) (err error) {
	c := e.c
	if err := CanBecome(c.State.Status, Running); err != nil {
		return err
	}
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		c.State.Status, c.State.Error, c.State.ExitCode = Exited, err.Error(), 128
		if c.State.FinishedAt.IsZero() || c.State.FinishedAt.Before(c.State.StartedAt) {
			c.State.FinishedAt = time.Now().UTC()
		}
		_ = m.save(c)
		err = classifyStartError(fmt.Errorf("start container %s: %w", c.Name, err))
	}()

	// The network (a namespace, veths, addresses) and the filesystem
	// (overlay, volumes) are independent: made at once. The network side
	// writes only c.Network, the other side never reads it. The /etc files
	// (from c.Network, and setting its upstreams) are then written while
	// the spec is made, which does not read c.Network.
	var netns string
	netDone, etcDone := make(chan error, 1), make(chan error, 1)
	go func() {
		ns, err := m.setupNetwork(ctx, c)
		netns = ns
		netDone <- err
		if err == nil {
			err = m.writeEtcFiles(c)
		}
		etcDone <- err
	}()
	mounts, imageConfig, fsErr := m.prepareFilesystem(ctx, c)
	netErr := <-netDone
	if fsErr == nil {
		undo = append(undo, func() { _ = m.unmountRootfs(c.ID) })
	}
	if netErr == nil {
		undo = append(undo, func() { m.teardownNetwork(c) })
	}
	if err := errors.Join(fsErr, netErr); err != nil {
		<-etcDone
		return err
	}
	spec, err := m.buildSpec(c, imageConfig, mounts, netns)
	var b []byte
	if err == nil {
		b, err = json.Marshal(spec)
	}
	if err == nil {
		// In place, not synced: the bundle is made again at every start,
		// and the file exists in a directory made ahead.
		err = writeInPlace(filepath.Join(m.bundleDir(c.ID), "config.json"), b, 0o600)
	}
	if err := errors.Join(err, <-etcDone); err != nil {
		return err
	}
	if m.observer != nil && len(c.Network.Networks) > 0 {
		m.observer.Attached(c) // with the upstreams writeEtcFiles found
	}
	logOpts, _ := logs.ParseOptions(c.Config.Log.Config)
	// Without attaches waiting for this start, create and start are one
	// request. A crash before the record below is saved then leaves a
	// running process that no record claims: restore stops it.
	startNow := len(e.pending) == 0
	pid, streams, err := m.monitor.Create(ctx, monitor.Request{
		ID: c.ID, Bundle: m.bundleDir(c.ID), ExitFile: m.exitPath(c.ID),
		Log:   monitor.LogOptions{Path: c.LogPath, MaxSize: logOpts.MaxSize, MaxFiles: logOpts.MaxFiles},
		Stdin: c.Config.OpenStdin, Terminal: c.Config.Tty, Start: startNow,
	})
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		streams.Close()
		_ = m.rt.Kill(context.Background(), c.ID, syscall.SIGKILL, true)
		_ = m.rt.Delete(context.Background(), c.ID, runtime.DeleteOptions{Force: true})
	})
	if err := failpoint.Inject("container/after-monitor-create"); err != nil {
		return err
	}
	// The monitor reports this run's exit from now on.
	c.State = State{Status: Running, Pid: pid, StartedAt: time.Now().UTC(), Health: initialHealth(c)}
	e.exited = make(chan struct{})
	m.saveSoon(e)
	e.streams.Close()
	e.streams = streams
	// Attaches waiting for this start get the output from its first byte.
	for _, p := range e.pending {
		a, err := m.monitor.Attach(ctx, c.ID)
		if err != nil {
			m.log.Warn("attach at start", "container", c.Name, "err", err)
			a = nil
		}
		p <- a
	}
	e.pending = nil
	if !startNow {
		if err := m.monitor.Start(ctx, c.ID); err != nil {
			return err
		}
	}
	if e.synced != nil {
		<-e.synced // its create's record
	}
	m.emit(c, "start", nil)
	m.startHealth(e)
	// The next create's directory, now that this start's work is done.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.makeAheadDirs()
	}()
	return nil
}

// saveSoon saves e's record once e.op is free: after the start that
// holds it has answered. A crash before leaves a run that the record does
// not claim yet, which restore adopts (see restore).
func (m *Manager) saveSoon(e *entry) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		e.op.Lock()
		defer e.op.Unlock()
		m.mu.Lock()
		current := m.containers[e.c.ID] == e
		m.mu.Unlock()
		if !current {
			return // removed meanwhile
		}
		if err := m.save(e.c); err != nil {
			m.log.Warn("save the record of a started container", "container", e.c.Name, "err", err)
		}
	}()
}

// classifyStartError gives a command that cannot be run its error class,
// as exec does (the monitor's errors reach here as text).
func classifyStartError(err error) error {
	msg := err.Error()
	i := strings.Index(msg, "setup failed at exec:")
	if i < 0 {
		return err
	}
	switch low := strings.ToLower(msg[i:]); {
	case strings.Contains(low, "not found") || strings.Contains(low, "no such file"):
		return errdefs.ErrNotFound.WithMessage(msg)
	case strings.Contains(low, "permission denied") || strings.Contains(low, "is a directory"):
		return errdefs.ErrPermissionDenied.WithMessage(msg)
	}
	return err
}

// prepareFilesystem mounts the container's rootfs and resolves its mounts
// (filling empty volumes from the image) and its image's config; on
// failure the rootfs is unmounted again.
func (m *Manager) prepareFilesystem(ctx context.Context, c *Container) ([]specs.Mount, *v1.ConfigFile, error) {
	if err := m.mountImage(ctx, c.ID, c.ImageID); err != nil {
		return nil, nil, err
	}
	mounts, err := m.prepareMounts(c)
	var config *v1.ConfigFile
	if err == nil {
		config, err = m.images.ConfigOf(ctx, c.ImageID)
	}
	if err != nil {
		_ = m.unmountRootfs(c.ID)
		return nil, nil, err
	}
	return mounts, config, nil
}
