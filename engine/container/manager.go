package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/spreaddirs"
)

// Runtime is what the manager asks of engine/runtime in the daemon's
// process; creating and starting happen in the monitor. Exec'd processes
// (exec, healthchecks) are children of the daemon.
type Runtime interface {
	State(ctx context.Context, id string) (runtime.State, error)
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Delete(ctx context.Context, id string, opts runtime.DeleteOptions) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Exec(ctx context.Context, id string, p *specs.Process, stdio runtime.IO) (runtime.Process, error)
	Stats(ctx context.Context, id string) (runtime.Stats, error)
	Pids(ctx context.Context, id string) ([]int, error)
}

// Options are the parts a Manager drives.
type Options struct {
	Root     string // the state root: records in ROOT/containers
	Images   *image.Store
	Volumes  *volume.Store
	Networks *network.Manager
	Runtime  Runtime
	// Binary is the berth executable that runs the monitor.
	Binary string
	Log    *slog.Logger
	// Network, when set, hears of each container joining and leaving its
	// networks, synchronously: the DNS records are in place before the
	// container's process starts.
	Network NetworkObserver
}

// NetworkObserver is told when a container's endpoints appear and go. It
// is called with the container's lock held and must not call the Manager.
type NetworkObserver interface {
	Attached(c *Container)
	Detached(c *Container)
}

// Event is something that happened to a container, for `events`, for the
// DNS records and for reconcilers.
type Event struct {
	Time     time.Time         `json:"time"`
	Action   string            `json:"action"` // create, start, die, stop, kill, pause, unpause, destroy, health_status
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels,omitempty"`
	ExitCode int               `json:"exitCode,omitempty"`
	Health   string            `json:"health,omitempty"`
}

// Manager keeps the containers of one state root.
type Manager struct {
	root     string
	images   *image.Store
	volumes  *volume.Store
	networks *network.Manager
	rt       Runtime
	monitor  *monitor.Client
	binary   string
	log      *slog.Logger
	observer NetworkObserver

	// shuttingDown is set while ShutdownMonitor ends the monitor.
	shuttingDown atomic.Bool

	ctx    context.Context // ends at Close: restarts and healthchecks stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex // guards containers, names, subs, execs, ahead
	containers map[string]*entry
	names      map[string]string // name -> id
	subs       map[chan Event]struct{}
	execs      map[string]*execProcess
	// ahead are container directories made for the next creates (see
	// aheaddir.go); makingAhead is set while they are made.
	ahead       []string
	makingAhead bool
}

// entry is one container in memory: its record and the lock that orders
// operations on it.
type entry struct {
	op sync.Mutex // held by create/start/stop/remove/exit handling
	c  *Container
	// exited closes when the current run's exit has been handled; a new
	// run replaces it.
	exited chan struct{}
	// health stops the current run's healthchecks.
	health context.CancelFunc
	// restartTimer is the pending restart of the restart policy.
	restartTimer *time.Timer
	// removing is set while Remove stops the container, so that nothing
	// (a watch's drift correction, the restart policy) starts it again in
	// between; docker calls this "marked for removal".
	removing bool
	// streams are the daemon's duplicates of the current run's stdio
	// descriptors (see monitor's package doc): input goes through them,
	// and they keep the pipes open should the monitor die.
	streams *monitor.Streams
	// pending are attaches waiting for the next start.
	pending []chan *monitor.Attachment
	// synced closes once the record its create wrote is synced; nil for a
	// container the daemon found at restore.
	synced chan struct{}
}

// Open loads the records of root, starts (or finds, and upgrades to
// Binary) the monitor, and catches up with what happened while no daemon
// ran: containers still running keep running, those that exited get
// their exit handled (and their restart policy applied), half-created
// ones are removed.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.Root, "containers"), 0o711); err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	// Containers come and go: each one's directory in a block group of
	// its own keeps inode allocation fast (see spreaddirs).
	if err := spreaddirs.Mark(filepath.Join(opts.Root, "containers")); err != nil {
		opts.Log.Warn("spread container directories", "err", err)
	}
	removeAheadDirs(opts.Root)
	mctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		root: opts.Root, images: opts.Images, volumes: opts.Volumes, networks: opts.Networks, rt: opts.Runtime,
		binary: opts.Binary, log: opts.Log, ctx: mctx, cancel: cancel, observer: opts.Network,
		containers: map[string]*entry{}, names: map[string]string{}, subs: map[chan Event]struct{}{},
		execs: map[string]*execProcess{},
	}
	exits, err := m.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	starts, err := m.restore(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	m.wg.Add(2)
	go m.watchExits(exits)
	go func() {
		defer m.wg.Done()
		m.startStopped(starts)
	}()
	return m, nil
}

// Close stops the manager's background work; containers keep running.
func (m *Manager) Close() error {
	m.cancel()
	m.mu.Lock()
	for _, e := range m.containers {
		if e.restartTimer != nil {
			e.restartTimer.Stop()
		}
		if e.health != nil {
			e.health()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	for _, e := range m.containers {
		e.streams.Close()
	}
	m.ahead = nil
	m.mu.Unlock()
	// A stopped daemon leaves no directory made ahead (the next makes its
	// own; Open removes those of one killed).
	removeAheadDirs(m.root)
	return nil
}

// ShutdownMonitor ends the monitor if no container runs, so that a test or
// an uninstall leaves no process behind.
func (m *Manager) ShutdownMonitor(ctx context.Context) error {
	// The exit stream ends with the monitor: that is no reason to start
	// another one.
	m.shuttingDown.Store(true)
	err := m.monitor.Shutdown(ctx, true)
	if err != nil {
		m.shuttingDown.Store(false)
	}
	return err
}

// Subscribe returns the events from now on until ctx ends.
func (m *Manager) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 256)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (m *Manager) emit(c *Container, action string, mod func(*Event)) {
	ev := Event{Time: time.Now().UTC(), Action: action, ID: c.ID, Name: c.Name, Labels: c.Config.Labels}
	if mod != nil {
		mod(&ev)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- ev:
		default:
			m.log.Warn("dropping an event for a slow subscriber", "action", action, "container", c.Name)
		}
	}
}

// lookup finds a container by id, unique id prefix or name.
func (m *Manager) lookup(ref string) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref = strings.TrimPrefix(ref, "/")
	if e, ok := m.containers[ref]; ok {
		return e, nil
	}
	if id, ok := m.names[ref]; ok {
		return m.containers[id], nil
	}
	var found *entry
	if len(ref) >= 3 {
		for id, e := range m.containers {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage("ambiguous container id prefix: " + ref)
				}
				found = e
			}
		}
	}
	if found == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no such container: " + ref)
	}
	return found, nil
}

// Get returns a copy of a container's record.
func (m *Manager) Get(ref string) (Container, error) {
	e, err := m.lookup(ref)
	if err != nil {
		return Container{}, err
	}
	e.op.Lock()
	defer e.op.Unlock()
	return *e.c, nil
}

// entries is a snapshot of the containers' entries, to visit each under its
// own lock without holding m.mu.
func (m *Manager) entries() []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*entry, 0, len(m.containers))
	for _, e := range m.containers {
		out = append(out, e)
	}
	return out
}

// ListOptions filter List.
type ListOptions struct {
	All    bool              // also containers that do not run
	Labels map[string]string // all must match; an empty value matches any
}

// List returns copies of the records that opts select, by name.
func (m *Manager) List(opts ListOptions) []Container {
	entries := m.entries()
	var out []Container
	for _, e := range entries {
		e.op.Lock()
		c := *e.c
		e.op.Unlock()
		if !opts.All && c.State.Status != Running && c.State.Status != Paused && c.State.Status != Restarting {
			continue
		}
		if !labels.Match(c.Config.Labels, opts.Labels) {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
