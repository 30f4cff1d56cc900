// Package engine assembles berth's engine for one state root: images,
// volumes, networks, the OCI runtime and the containers that use them all.
// The daemon holds one Engine; tests open their own on a fresh root.
//
// It is also the in-process implementation of what reconcile needs
// (reconcile.Engine): thin methods that call the parts.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/dnsresolver"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/network"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/engine/volume"
	"github.com/berth-dev/berth/internal/rootid"
)

// Options configure Open.
type Options struct {
	Root string
	// Binary is berth's executable, re-executed as the monitor and as each
	// container's setup stage. Default: this process's executable.
	Binary string
	Images image.Options
	Log    *slog.Logger
}

// Engine is the engine of one state root.
type Engine struct {
	Root       string
	Images     *image.Store
	Volumes    *volume.Store
	Networks   *network.Manager
	Runtime    *runtime.Runtime
	Builder    *build.Builder // Dockerfile builds, RUN steps as this process's children
	Containers *container.Manager
	// DNS answers the containers' names on each network's gateway.
	DNS *dnsresolver.Server
	log *slog.Logger
}

// Open opens every part of the engine on opts.Root, repairing what a crash
// left half-done, and reconnects to the containers that still run.
func Open(ctx context.Context, opts Options) (_ *Engine, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	e := &Engine{Root: opts.Root, log: opts.Log}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Images, err = image.Open(opts.Root, opts.Images); err != nil {
		return nil, err
	}
	if e.Volumes, err = volume.Open(filepath.Join(opts.Root, "volumes")); err != nil {
		return nil, err
	}
	if removed, _ := e.Volumes.Repair(); len(removed) > 0 {
		opts.Log.Warn("removed volumes a crash left half-created", "volumes", removed)
	}
	if e.Networks, err = network.Open(filepath.Join(opts.Root, "network"), network.Options{Root: opts.Root}); err != nil {
		return nil, err
	}
	for _, r := range e.Networks.Repairs() {
		opts.Log.Warn("network repair", "what", r)
	}
	if e.Runtime, err = runtime.New(runtime.Config{
		StateDir: filepath.Join(opts.Root, "runtime"), CgroupParent: rootid.CgroupParent(opts.Root),
		Binary: opts.Binary, Logger: opts.Log,
	}); err != nil {
		return nil, err
	}
	if e.Builder, err = build.New(ctx, build.Config{Root: opts.Root, Images: e.Images, Runtime: e.Runtime, Log: opts.Log}); err != nil {
		return nil, err
	}
	e.DNS = dnsresolver.New(dnsresolver.Config{})
	if e.Containers, err = container.Open(ctx, container.Options{
		Root: opts.Root, Images: e.Images, Volumes: e.Volumes, Networks: e.Networks,
		Runtime: e.Runtime, Binary: opts.Binary, Log: opts.Log,
		Network: dnsNetworks{&dnsFeed{dns: e.DNS, log: opts.Log}, e},
	}); err != nil {
		return nil, err
	}
	e.resyncDNS()
	// A daemon starts once and then idles: give back what start-up used.
	container.TrimMemory()
	return e, nil
}

// dnsNetworks is the DNS feed that also listens on the networks the
// container manager makes (the default network).
type dnsNetworks struct {
	*dnsFeed
	e *Engine
}

func (d dnsNetworks) NetworkCreated(n network.Network) { d.e.listen(n) }

// Close releases the engine; containers keep running under the monitor.
func (e *Engine) Close() error {
	var errs []error
	if e.Containers != nil {
		errs = append(errs, e.Containers.Close())
	}
	if e.DNS != nil {
		errs = append(errs, e.DNS.Close())
	}
	if e.Runtime != nil {
		errs = append(errs, e.Runtime.Close())
	}
	if e.Networks != nil {
		errs = append(errs, e.Networks.Close())
	}
	if e.Images != nil {
		errs = append(errs, e.Images.Close())
	}
	return errors.Join(errs...)
}
