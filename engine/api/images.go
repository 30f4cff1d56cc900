package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-dev/berth/engine/image"
)

// Requests of the image endpoints.
type (
	// TagRequest is the body of POST /v1/images/tag.
	TagRequest struct {
		Source string `json:"Source"`
		Target string `json:"Target"`
	}
	// RemoveRequest is the body of POST /v1/images/remove.
	RemoveRequest struct {
		Name string `json:"Name"`
		image.RemoveOptions
	}
	// PullRequest is the body of POST /v1/images/pull.
	PullRequest struct {
		Reference string `json:"Reference"`
		image.PullOptions
	}
	// PushRequest is the body of POST /v1/images/push.
	PushRequest struct {
		Reference string `json:"Reference"`
		image.PushOptions
	}
	// AuthRequest is the body of POST /v1/auth, as docker's /auth.
	AuthRequest struct {
		ServerAddress string           `json:"ServerAddress"`
		Auth          authn.AuthConfig `json:"Auth"`
	}
	// AuthResponse answers POST /v1/auth.
	AuthResponse struct {
		Status string `json:"Status"`
	}
)

// Trailers of GET /v1/images/save: a failure after the tarball started
// cannot change the status any more, so it comes after the body.
const (
	trailerError  = "Berth-Error"
	trailerStatus = "Berth-Error-Status"
)

// RegisterImageRoutes serves the image endpoints on mux from store.
func RegisterImageRoutes(mux *http.ServeMux, store *image.Store) {
	h := &imageHandlers{store: store}
	p := "/" + Version
	mux.HandleFunc("GET "+p+"/images", h.list)
	mux.HandleFunc("GET "+p+"/images/inspect", h.inspect)
	mux.HandleFunc("GET "+p+"/images/history", h.history)
	mux.HandleFunc("POST "+p+"/images/tag", h.tag)
	mux.HandleFunc("POST "+p+"/images/remove", h.remove)
	mux.HandleFunc("POST "+p+"/images/prune", h.prune)
	mux.HandleFunc("POST "+p+"/images/pull", h.pull)
	mux.HandleFunc("POST "+p+"/images/push", h.push)
	mux.HandleFunc("POST "+p+"/images/load", h.load)
	mux.HandleFunc("POST "+p+"/images/import", h.importTar)
	mux.HandleFunc("GET "+p+"/images/save", h.save)
	mux.HandleFunc("POST "+p+"/auth", h.auth)
}

type imageHandlers struct{ store *image.Store }

func (h *imageHandlers) list(w http.ResponseWriter, r *http.Request) {
	var opts image.ListOptions
	q := r.URL.Query()
	if d := q.Get("dangling"); d != "" {
		b, err := strconv.ParseBool(d)
		if err != nil {
			WriteError(w, errdefs.ErrInvalidArgument.WithMessage("dangling: want true or false"))
			return
		}
		opts.Dangling = &b
	}
	opts.References = q["reference"]
	out, err := h.store.List(r.Context(), opts)
	answer(w, out, err)
}

func (h *imageHandlers) inspect(w http.ResponseWriter, r *http.Request) {
	out, err := h.store.Inspect(r.Context(), r.URL.Query().Get("name"))
	answer(w, out, err)
}

func (h *imageHandlers) history(w http.ResponseWriter, r *http.Request) {
	out, err := h.store.History(r.Context(), r.URL.Query().Get("name"))
	answer(w, out, err)
}

func (h *imageHandlers) tag(w http.ResponseWriter, r *http.Request) {
	var req TagRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	answer(w, nil, h.store.Tag(r.Context(), req.Source, req.Target))
}

func (h *imageHandlers) remove(w http.ResponseWriter, r *http.Request) {
	var req RemoveRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	out, err := h.store.Remove(r.Context(), req.Name, req.RemoveOptions)
	answer(w, out, err)
}

func (h *imageHandlers) prune(w http.ResponseWriter, r *http.Request) {
	var opts image.PruneOptions
	if err := DecodeJSON(r, &opts); err != nil {
		WriteError(w, err)
		return
	}
	out, err := h.store.Prune(r.Context(), opts)
	answer(w, out, err)
}

// sinkTo sends an operation's progress events down a stream.
func sinkTo(sw *StreamWriter) image.Sink {
	return func(e image.Event) { _ = sw.Event(e) }
}

func (h *imageHandlers) pull(w http.ResponseWriter, r *http.Request) {
	var req PullRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	req.Sink = sinkTo(sw)
	img, err := h.store.Pull(r.Context(), req.Reference, req.PullOptions)
	sw.Finish(img, err)
}

func (h *imageHandlers) push(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	req.Sink = sinkTo(sw)
	res, err := h.store.Push(r.Context(), req.Reference, req.PushOptions)
	sw.Finish(res, err)
}

// platformParam reads an optional os/arch[/variant] query parameter.
func platformParam(q url.Values) (*image.Platform, error) {
	s := q.Get("platform")
	if s == "" {
		return nil, nil
	}
	p, err := image.ParsePlatform(s)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (h *imageHandlers) load(w http.ResponseWriter, r *http.Request) {
	platform, err := platformParam(r.URL.Query())
	if err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	out, err := h.store.Load(r.Context(), r.Body, image.LoadOptions{Platform: platform, Sink: sinkTo(sw)})
	sw.Finish(out, err)
}

func (h *imageHandlers) importTar(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := image.ImportOptions{Reference: q.Get("reference"), Message: q.Get("message")}
	if c := q.Get("config"); c != "" {
		if err := json.Unmarshal([]byte(c), &opts.Config); err != nil {
			WriteError(w, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("import: bad config: %v", err)))
			return
		}
	}
	platform, err := platformParam(q)
	if err != nil {
		WriteError(w, err)
		return
	}
	opts.Platform = platform
	img, err := h.store.Import(r.Context(), r.Body, opts)
	answer(w, img, err)
}

func (h *imageHandlers) save(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	names := q["name"]
	// Answer a missing image with its status while we still can.
	for _, n := range names {
		if _, err := h.store.Resolve(r.Context(), n); err != nil {
			WriteError(w, err)
			return
		}
	}
	w.Header().Set("Trailer", trailerError+", "+trailerStatus)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := h.store.Save(r.Context(), w, names, image.SaveOptions{Format: q.Get("format")}); err != nil {
		w.Header().Set(trailerError, err.Error())
		w.Header().Set(trailerStatus, strconv.Itoa(StatusOf(err)))
	}
}

func (h *imageHandlers) auth(w http.ResponseWriter, r *http.Request) {
	var req AuthRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	if err := h.store.CheckLogin(r.Context(), req.ServerAddress, req.Auth); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, AuthResponse{Status: "Login Succeeded"})
}

// answer writes out as JSON, or err.
func answer(w http.ResponseWriter, out any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

// ImageClient reaches a daemon's image store. Its methods are those of
// *image.Store, so code can take either through one interface.
type ImageClient struct{ c *Client }

// Images returns the client of the daemon's image store.
func (c *Client) Images() *ImageClient { return &ImageClient{c: c} }

func imagesPath(op string, q url.Values) string {
	p := "/" + Version + "/images"
	if op != "" {
		p += "/" + op
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// List lists the daemon's images.
func (ic *ImageClient) List(ctx context.Context, opts image.ListOptions) ([]image.Summary, error) {
	q := url.Values{}
	if opts.Dangling != nil {
		q.Set("dangling", strconv.FormatBool(*opts.Dangling))
	}
	for _, r := range opts.References {
		q.Add("reference", r)
	}
	var out []image.Summary
	err := ic.c.Call(ctx, http.MethodGet, imagesPath("", q), nil, &out)
	return out, err
}

// Inspect describes an image.
func (ic *ImageClient) Inspect(ctx context.Context, ref string) (image.Details, error) {
	var out image.Details
	err := ic.c.Call(ctx, http.MethodGet, imagesPath("inspect", url.Values{"name": {ref}}), nil, &out)
	return out, err
}

// History lists the steps that made an image, newest first.
func (ic *ImageClient) History(ctx context.Context, ref string) ([]image.HistoryEntry, error) {
	var out []image.HistoryEntry
	err := ic.c.Call(ctx, http.MethodGet, imagesPath("history", url.Values{"name": {ref}}), nil, &out)
	return out, err
}

// Tag gives the image source the name target.
func (ic *ImageClient) Tag(ctx context.Context, source, target string) error {
	return ic.c.Call(ctx, http.MethodPost, imagesPath("tag", nil), TagRequest{Source: source, Target: target}, nil)
}

// Remove removes a name or an image, as `docker rmi` does.
func (ic *ImageClient) Remove(ctx context.Context, ref string, opts image.RemoveOptions) ([]image.Deletion, error) {
	var out []image.Deletion
	err := ic.c.Call(ctx, http.MethodPost, imagesPath("remove", nil), RemoveRequest{Name: ref, RemoveOptions: opts}, &out)
	return out, err
}

// Prune removes unused images and content.
func (ic *ImageClient) Prune(ctx context.Context, opts image.PruneOptions) (image.PruneReport, error) {
	var out image.PruneReport
	err := ic.c.Call(ctx, http.MethodPost, imagesPath("prune", nil), opts, &out)
	return out, err
}

// onEvents decodes streamed events for sink.
func onEvents(sink image.Sink) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		if sink == nil {
			return nil
		}
		var e image.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bad progress event: %w", err)
		}
		sink(e)
		return nil
	}
}

// Pull pulls an image through the daemon; opts.Sink gets its progress.
func (ic *ImageClient) Pull(ctx context.Context, ref string, opts image.PullOptions) (image.Image, error) {
	var out image.Image
	err := ic.c.Stream(ctx, http.MethodPost, imagesPath("pull", nil), PullRequest{Reference: ref, PullOptions: opts}, onEvents(opts.Sink), &out)
	return out, err
}

// Push pushes an image through the daemon; opts.Sink gets its progress.
func (ic *ImageClient) Push(ctx context.Context, ref string, opts image.PushOptions) (image.PushResult, error) {
	var out image.PushResult
	err := ic.c.Stream(ctx, http.MethodPost, imagesPath("push", nil), PushRequest{Reference: ref, PushOptions: opts}, onEvents(opts.Sink), &out)
	return out, err
}

// Load streams a tarball to the daemon and loads its images.
func (ic *ImageClient) Load(ctx context.Context, r io.Reader, opts image.LoadOptions) ([]image.LoadedImage, error) {
	q := url.Values{}
	if opts.Platform != nil {
		q.Set("platform", opts.Platform.String())
	}
	var out []image.LoadedImage
	err := ic.c.Stream(ctx, http.MethodPost, imagesPath("load", q), onlyReader{r}, onEvents(opts.Sink), &out)
	return out, err
}

// Import streams a root file system tarball to the daemon as a new image.
func (ic *ImageClient) Import(ctx context.Context, r io.Reader, opts image.ImportOptions) (image.Image, error) {
	q := url.Values{}
	if opts.Reference != "" {
		q.Set("reference", opts.Reference)
	}
	if opts.Message != "" {
		q.Set("message", opts.Message)
	}
	if opts.Platform != nil {
		q.Set("platform", opts.Platform.String())
	}
	cfg, err := json.Marshal(opts.Config)
	if err != nil {
		return image.Image{}, err
	}
	q.Set("config", string(cfg))
	var out image.Image
	err = ic.c.Call(ctx, http.MethodPost, imagesPath("import", q), onlyReader{r}, &out)
	return out, err
}

// Save writes images as a tarball to w, streamed from the daemon.
func (ic *ImageClient) Save(ctx context.Context, w io.Writer, refs []string, opts image.SaveOptions) error {
	q := url.Values{"name": refs}
	if opts.Format != "" {
		q.Set("format", opts.Format)
	}
	resp, err := ic.c.Do(ctx, http.MethodGet, imagesPath("save", q), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		status, _ := strconv.Atoi(resp.Trailer.Get(trailerStatus))
		return ErrorFromStatus(status, msg)
	}
	return nil
}

// CheckLogin verifies credentials against a registry through the daemon.
func (ic *ImageClient) CheckLogin(ctx context.Context, server string, auth authn.AuthConfig) error {
	return ic.c.Call(ctx, http.MethodPost, "/"+Version+"/auth", AuthRequest{ServerAddress: server, Auth: auth}, nil)
}

// onlyReader hides anything but Read, so Client.Do streams the body
// instead of encoding it as JSON.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
