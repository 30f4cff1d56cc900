package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/internal/progress"
)

// RegisterBuildRoutes serves builds and what shares their layer machinery:
//
//	POST /v1/build                     build.Options -> stream of progress.Event, then build.Result
//	POST /v1/build/prune               -> build.PruneReport
//	GET  /v1/containers/{id}/changes   -> []build.Change (container diff)
//	POST /v1/containers/{id}/commit    build.CommitOptions -> image.Image
//
// A build runs with the request's context: a client that goes away (its
// Ctrl-C) cancels it, as docker build does.
func RegisterBuildRoutes(mux *http.ServeMux, b *build.Builder, containers *container.Manager, images *image.Store) {
	h := &buildHandlers{b: b, containers: containers, images: images}
	p := "/" + Version
	mux.HandleFunc("POST "+p+"/build", h.build)
	mux.HandleFunc("POST "+p+"/build/prune", h.prune)
	mux.HandleFunc("GET "+p+"/containers/{id}/changes", h.changes)
	mux.HandleFunc("POST "+p+"/containers/{id}/commit", h.commit)
}

type buildHandlers struct {
	b          *build.Builder
	containers *container.Manager
	images     *image.Store
}

func (h *buildHandlers) build(w http.ResponseWriter, r *http.Request) {
	var opts build.Options
	if err := DecodeJSON(r, &opts); err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	opts.Sink = progress.SinkFunc(func(e progress.Event) { _ = sw.Event(e) })
	res, err := h.b.Build(r.Context(), opts)
	sw.Finish(res, err)
}

func (h *buildHandlers) prune(w http.ResponseWriter, r *http.Request) {
	rep, err := h.b.Prune(r.Context())
	answer(w, rep, err)
}

func (h *buildHandlers) changes(w http.ResponseWriter, r *http.Request) {
	src, _, err := ContainerLayer(r.Context(), h.containers, h.images, r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	out, err := build.Changes(src.Layer)
	answer(w, out, err)
}

func (h *buildHandlers) commit(w http.ResponseWriter, r *http.Request) {
	var opts build.CommitOptions
	if err := DecodeJSON(r, &opts); err != nil {
		WriteError(w, err)
		return
	}
	src, c, err := ContainerLayer(r.Context(), h.containers, h.images, r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	if opts.Pause && c.State.Status == container.Running {
		if err := h.containers.Pause(r.Context(), c.ID); err != nil {
			WriteError(w, fmt.Errorf("commit: pause %s: %w", c.Name, err))
			return
		}
		defer h.containers.Unpause(context.WithoutCancel(r.Context()), c.ID)
	}
	img, err := h.b.Commit(r.Context(), src, opts)
	answer(w, img, err)
}

// ContainerLayer describes a container's writable layer for diff and
// commit: its upper dir over its image's snapshots, the mount targets
// the engine made in it, and its configuration as an image's (the image's
// overridden by the container's, as docker commit keeps it).
func ContainerLayer(ctx context.Context, m *container.Manager, images *image.Store, ref string) (build.CommitSource, container.Container, error) {
	c, err := m.Get(ref)
	if err != nil {
		return build.CommitSource{}, c, err
	}
	img, err := images.Resolve(ctx, c.ImageID)
	if err != nil {
		return build.CommitSource{}, c, fmt.Errorf("image of container %s: %w", c.Name, err)
	}
	lower, err := images.Snapshots(ctx, c.ImageID)
	if err != nil {
		return build.CommitSource{}, c, fmt.Errorf("image of container %s: %w", c.Name, err)
	}
	mounts := []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/proc", "/sys", "/dev", container.InitPath}
	for _, mt := range c.Config.Mounts {
		mounts = append(mounts, mt.Target)
	}
	return build.CommitSource{
		Layer:     build.Layer{Upper: m.UpperDir(c.ID), Lower: lower, Mountpoints: mounts},
		ImageID:   c.ImageID,
		Config:    containerImageConfig(img.Config.Config, c.Config),
		CreatedBy: strings.Join(append([]string{c.Path}, c.Args...), " "),
	}, c, nil
}

// containerImageConfig is the run configuration a commit keeps: the
// image's, with what the container set over it.
func containerImageConfig(cfg v1.Config, c container.Config) v1.Config {
	cfg.Env = append([]string{}, cfg.Env...)
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		for i, e := range cfg.Env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				cfg.Env = append(cfg.Env[:i:i], cfg.Env[i+1:]...)
				break
			}
		}
		cfg.Env = append(cfg.Env, kv)
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = c.Entrypoint
		if c.Cmd == nil {
			cfg.Cmd = nil
		}
	}
	if c.Cmd != nil {
		cfg.Cmd = c.Cmd
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	if c.User != "" {
		cfg.User = c.User
	}
	if c.StopSignal != "" {
		cfg.StopSignal = c.StopSignal
	}
	if len(c.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if len(c.ExposedPorts) > 0 {
		ports := map[string]struct{}{}
		for k := range cfg.ExposedPorts {
			ports[k] = struct{}{}
		}
		for _, p := range c.ExposedPorts {
			ports[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = struct{}{}
		}
		cfg.ExposedPorts = ports
	}
	return cfg
}

// BuildClient is the builder through the daemon.
type BuildClient struct{ c *Client }

// Builds returns the client of the build endpoints.
func (c *Client) Builds() *BuildClient { return &BuildClient{c: c} }

// Build builds an image in the daemon; opts.Sink gets the progress.
func (bc *BuildClient) Build(ctx context.Context, opts build.Options) (build.Result, error) {
	var out build.Result
	sink := opts.Sink
	err := bc.c.Stream(ctx, http.MethodPost, "/"+Version+"/build", opts, func(raw json.RawMessage) error {
		if sink == nil {
			return nil
		}
		var e progress.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bad progress event: %w", err)
		}
		sink.Event(e)
		return nil
	}, &out)
	return out, err
}

// Prune empties the build cache.
func (bc *BuildClient) Prune(ctx context.Context) (build.PruneReport, error) {
	var out build.PruneReport
	err := bc.c.Call(ctx, http.MethodPost, "/"+Version+"/build/prune", nil, &out)
	return out, err
}

// Changes lists what a container changed in its writable layer.
func (bc *BuildClient) Changes(ctx context.Context, id string) ([]build.Change, error) {
	var out []build.Change
	err := bc.c.Call(ctx, http.MethodGet, "/"+Version+"/containers/"+url.PathEscape(id)+"/changes", nil, &out)
	return out, err
}

// Commit makes an image of a container's writable layer.
func (bc *BuildClient) Commit(ctx context.Context, id string, opts build.CommitOptions) (image.Image, error) {
	var out image.Image
	err := bc.c.Call(ctx, http.MethodPost, "/"+Version+"/containers/"+url.PathEscape(id)+"/commit", opts, &out)
	return out, err
}
