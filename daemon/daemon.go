// Package daemon is `berth daemon`: it owns one engine state root, serves the
// API on a unix socket and runs the projects' reconcilers.
//
// Only one daemon serves a root at a time; the lock is an flock on
// ROOT/daemon.lock held for the daemon's life, so a crashed daemon never
// leaves a stale lock behind.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/internal/flock"
)

// Config says where the daemon keeps its state and where it listens.
type Config struct {
	Root    string // state root, e.g. /var/lib/berth
	Socket  string // path of the API socket
	Version string // berth's version, reported by `berth version`
	// Binary is berth's executable, re-executed as the monitor and as
	// containers' setup stage; default: this process's executable.
	Binary string
	Log    *slog.Logger
}

// Daemon is a running berth daemon.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	lock     *os.File
	started  time.Time
	engine   *engine.Engine
	projects projects
	watches  watches
	// ctx ends when the daemon stops: watches and streams end with it.
	ctx context.Context
}

// Run serves the API until ctx is cancelled, then stops cleanly.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Daemon{cfg: cfg, log: cfg.Log, started: time.Now()}
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return fmt.Errorf("state root: %w", err)
	}
	if err := d.takeLock(); err != nil {
		return err
	}
	defer d.lock.Close()
	imageOpts, err := d.imageOptions()
	if err != nil {
		return err
	}
	eng, err := engine.Open(ctx, engine.Options{Root: cfg.Root, Binary: cfg.Binary, Images: imageOpts, Log: cfg.Log})
	if err != nil {
		return err
	}
	d.engine = eng
	var stopWatches context.CancelFunc
	d.ctx, stopWatches = context.WithCancel(context.Background())
	defer stopWatches()
	defer func() {
		// Containers outlive the daemon under the monitor; with none left,
		// the monitor goes too, so a stopped daemon leaves no process.
		_ = eng.Containers.ShutdownMonitor(context.Background())
		eng.Close()
	}()

	ln, err := listen(cfg.Socket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	cfg.Log.Info("berth daemon serving", "root", cfg.Root, "socket", cfg.Socket, "version", cfg.Version, "pid", os.Getpid())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.resumeWatches()
	go d.resyncNetworks()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", cfg.Socket, err)
	case <-ctx.Done():
	}
	cfg.Log.Info("berth daemon stopping")
	stopWatches()
	d.stopAllWatches()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	_ = os.Remove(cfg.Socket)
	return nil
}

// takeLock makes this daemon the only one serving its root.
func (d *Daemon) takeLock() error {
	path := filepath.Join(d.cfg.Root, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("daemon lock: %w", err)
	}
	if err := flock.Exclusive(f, flock.ForkWait); err != nil {
		if !errors.Is(err, flock.ErrHeld) {
			f.Close()
			return fmt.Errorf("daemon lock: %w", err)
		}
		pid, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(pid))
		if holder == "" {
			holder = "unknown"
		}
		return errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("another berth daemon (pid %s) serves state root %s", holder, d.cfg.Root))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	d.lock = f
	return nil
}

// listen opens the API socket, replacing a stale one left by a crash (the
// daemon lock proves nobody else serves it), with mode 0660.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket mode: %w", err)
	}
	return ln, nil
}

// resyncNetworks re-applies the firewall rules every minute: a Docker or
// firewall started after berth's networks may have put its own in front.
func (d *Daemon) resyncNetworks() {
	for _, w := range d.engine.Networks.Warnings() {
		d.log.Warn("network", "warning", w)
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
			if err := d.engine.Networks.Resync(); err != nil {
				d.log.Warn("network resync", "err", err)
			}
		}
	}
}

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, "OK")
	})
	mux.HandleFunc("GET /"+api.Version+"/version", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, d.versionInfo())
	})
	d.imageRoutes(mux)
	d.projectRoutes(mux)
	d.watchRoutes(mux)
	api.RegisterContainerRoutes(mux, d.engine.Containers)
	api.RegisterNetworkRoutes(mux, d.engine, d.engine.Networks.Endpoints)
	api.RegisterArchiveRoutes(mux, d.engine.Containers)
	api.RegisterVolumeRoutes(mux, d.engine.Volumes, d.engine.VolumeUsers)
	api.RegisterBuildRoutes(mux, d.engine.Builder, d.engine.Containers, d.engine.Images)
	return mux
}

func (d *Daemon) versionInfo() api.VersionInfo {
	return api.VersionInfo{
		Version:    d.cfg.Version,
		APIVersion: api.Version,
		GoVersion:  runtime.Version(),
		Os:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Pid:        os.Getpid(),
		Root:       d.cfg.Root,
	}
}
