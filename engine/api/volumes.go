package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/volume"
)

// Requests and answers of the volume endpoints.
type (
	// VolumeCreateRequest is the body of POST /v1/volumes.
	VolumeCreateRequest = volume.CreateOptions
	// VolumePruneReport answers POST /v1/volumes/prune.
	VolumePruneReport struct {
		VolumesDeleted []string `json:"VolumesDeleted"`
		SpaceReclaimed int64    `json:"SpaceReclaimed"`
	}
	// VolumeListEntry is a volume and the containers that use it.
	VolumeListEntry struct {
		volume.Volume
		// UsedBy names the containers that mount it.
		UsedBy []string `json:"UsedBy,omitempty"`
	}
)

// RegisterVolumeRoutes serves the volume endpoints from s; users names the
// containers that use a volume (the container engine knows it).
func RegisterVolumeRoutes(mux *http.ServeMux, s *volume.Store, users func(name string) []string) {
	h := &volumeHandlers{s: s, users: users}
	p := "/" + Version + "/volumes"
	mux.HandleFunc("GET "+p, h.list)
	mux.HandleFunc("POST "+p, h.create)
	mux.HandleFunc("POST "+p+"/prune", h.prune)
	mux.HandleFunc("GET "+p+"/{name}", h.inspect)
	mux.HandleFunc("DELETE "+p+"/{name}", h.remove)
}

type volumeHandlers struct {
	s     *volume.Store
	users func(string) []string
}

// list takes label=KEY[=VALUE] and dangling=true|false filters.
func (h *volumeHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	vols, err := h.s.List(labelFilter(q))
	if err != nil {
		WriteError(w, err)
		return
	}
	var dangling *bool
	if d := q.Get("dangling"); d != "" {
		b, err := strconv.ParseBool(d)
		if err != nil {
			WriteError(w, errdefs.ErrInvalidArgument.WithMessage("dangling: want true or false"))
			return
		}
		dangling = &b
	}
	out := []VolumeListEntry{}
	for _, v := range vols {
		e := VolumeListEntry{Volume: v, UsedBy: h.users(v.Name)}
		if dangling != nil && (len(e.UsedBy) == 0) != *dangling {
			continue
		}
		out = append(out, e)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *volumeHandlers) create(w http.ResponseWriter, r *http.Request) {
	var req VolumeCreateRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := h.s.Create(req)
	answer(w, v, err)
}

func (h *volumeHandlers) inspect(w http.ResponseWriter, r *http.Request) {
	v, err := h.s.Get(r.PathValue("name"))
	answer(w, v, err)
}

func (h *volumeHandlers) remove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	answer(w, nil, h.s.Remove(name, h.users(name), r.URL.Query().Get("force") != ""))
}

// prune removes unused anonymous volumes (all=1: unused named ones too)
// that match the label filters.
func (h *volumeHandlers) prune(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sizes := map[string]int64{}
	if vols, err := h.s.List(labelFilter(q)); err == nil {
		for _, v := range vols {
			sizes[v.Name], _ = h.s.DiskUsage(v.Name)
		}
	}
	removed, err := h.s.Prune(func(name string) bool { return len(h.users(name)) > 0 }, labelFilter(q), q.Get("all") != "")
	rep := VolumePruneReport{VolumesDeleted: removed}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	for _, name := range removed {
		rep.SpaceReclaimed += sizes[name]
	}
	answer(w, rep, err)
}

// VolumeClient reaches a daemon's volumes.
type VolumeClient struct{ c *Client }

// Volumes returns the client of the daemon's volumes.
func (c *Client) Volumes() *VolumeClient { return &VolumeClient{c: c} }

func volumesPath(parts ...string) string {
	p := "/" + Version + "/volumes"
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// VolumeListOptions filter List.
type VolumeListOptions struct {
	Labels   map[string]string
	Dangling *bool // only unused (true) or used (false) volumes
}

// List returns the volumes that opts select, by name.
func (vc *VolumeClient) List(ctx context.Context, opts VolumeListOptions) ([]VolumeListEntry, error) {
	q := url.Values{}
	for k, v := range opts.Labels {
		if v == "" {
			q.Add("label", k)
		} else {
			q.Add("label", k+"="+v)
		}
	}
	if opts.Dangling != nil {
		q.Set("dangling", strconv.FormatBool(*opts.Dangling))
	}
	var out []VolumeListEntry
	err := vc.c.Call(ctx, http.MethodGet, volumesPath()+"?"+q.Encode(), nil, &out)
	return out, err
}

// Create makes a volume (or returns the existing one of that name).
func (vc *VolumeClient) Create(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error) {
	var v volume.Volume
	err := vc.c.Call(ctx, http.MethodPost, volumesPath(), opts, &v)
	return v, err
}

// Inspect returns a volume.
func (vc *VolumeClient) Inspect(ctx context.Context, name string) (volume.Volume, error) {
	var v volume.Volume
	err := vc.c.Call(ctx, http.MethodGet, volumesPath(name), nil, &v)
	return v, err
}

// Remove deletes a volume; force even when containers use it.
func (vc *VolumeClient) Remove(ctx context.Context, name string, force bool) error {
	q := ""
	if force {
		q = "?force=1"
	}
	return vc.c.Call(ctx, http.MethodDelete, volumesPath(name)+q, nil, nil)
}

// Prune removes unused volumes: anonymous ones, or all with all set.
func (vc *VolumeClient) Prune(ctx context.Context, labels map[string]string, all bool) (VolumePruneReport, error) {
	q := url.Values{}
	for k, v := range labels {
		q.Add("label", k+"="+v)
	}
	if all {
		q.Set("all", "1")
	}
	var rep VolumePruneReport
	err := vc.c.Call(ctx, http.MethodPost, volumesPath("prune")+"?"+q.Encode(), nil, &rep)
	return rep, err
}
