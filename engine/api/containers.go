package api

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/berth-dev/berth/internal/labels"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
)

// Requests and answers of the container endpoints.
type (
	// StopRequest is the body of POST /v1/containers/{id}/stop.
	StopRequest struct {
		Timeout *time.Duration `json:"Timeout,omitempty"`
	}
	// KillRequest is the body of POST /v1/containers/{id}/kill.
	KillRequest struct {
		Signal string `json:"Signal,omitempty"`
	}
	// RenameRequest is the body of POST /v1/containers/{id}/rename.
	RenameRequest struct {
		Name string `json:"Name"`
	}
	// WaitResponse answers POST /v1/containers/{id}/wait.
	WaitResponse struct {
		StatusCode int `json:"StatusCode"`
	}
	// LogEntry is one streamed line of GET /v1/containers/{id}/logs.
	LogEntry struct {
		Stream string    `json:"stream"`
		Time   time.Time `json:"time"`
		Line   string    `json:"line"`
	}
	// ExecCreateResponse answers POST /v1/containers/{id}/exec.
	ExecCreateResponse struct {
		ID string `json:"Id"`
	}
	// ExecStartRequest is the body of POST /v1/exec/{id}/start: with
	// Detach the process runs in the background and the answer is
	// immediate; otherwise the connection is taken over.
	ExecStartRequest struct {
		Detach bool `json:"Detach,omitempty"`
	}
)

// RegisterContainerRoutes serves the container endpoints from m.
func RegisterContainerRoutes(mux *http.ServeMux, m *container.Manager) {
	h := &containerHandlers{m: m}
	p := "/" + Version + "/containers"
	mux.HandleFunc("GET "+p, h.list)
	mux.HandleFunc("POST "+p, h.create)
	mux.HandleFunc("GET "+p+"/{id}", h.inspect)
	mux.HandleFunc("POST "+p+"/{id}/start", h.start)
	mux.HandleFunc("POST "+p+"/{id}/stop", h.stop)
	mux.HandleFunc("POST "+p+"/{id}/kill", h.kill)
	mux.HandleFunc("POST "+p+"/{id}/pause", h.pause)
	mux.HandleFunc("POST "+p+"/{id}/unpause", h.unpause)
	mux.HandleFunc("POST "+p+"/{id}/rename", h.rename)
	mux.HandleFunc("POST "+p+"/{id}/wait", h.wait)
	mux.HandleFunc("DELETE "+p+"/{id}", h.remove)
	mux.HandleFunc("GET "+p+"/{id}/logs", h.logs)
	mux.HandleFunc("POST "+p+"/{id}/attach", h.attach)
	mux.HandleFunc("POST "+p+"/{id}/resize", h.resize)
	mux.HandleFunc("GET "+p+"/{id}/top", h.top)
	mux.HandleFunc("GET "+p+"/{id}/stats", h.stats)
	mux.HandleFunc("POST "+p+"/{id}/exec", h.execCreate)
	e := "/" + Version + "/exec"
	mux.HandleFunc("POST "+e+"/{id}/start", h.execStart)
	mux.HandleFunc("POST "+e+"/{id}/resize", h.execResize)
	mux.HandleFunc("GET "+e+"/{id}/json", h.execInspect)
	mux.HandleFunc("GET /"+Version+"/events", h.events)
}

type containerHandlers struct{ m *container.Manager }

// labelFilter reads label=KEY=VALUE (or label=KEY) query parameters.
func labelFilter(q url.Values) map[string]string {
	out := map[string]string{}
	for _, l := range q["label"] {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

func (h *containerHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := h.m.List(container.ListOptions{All: q.Get("all") != "", Labels: labelFilter(q)})
	if out == nil {
		out = []container.Container{}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *containerHandlers) create(w http.ResponseWriter, r *http.Request) {
	var cfg container.Config
	if err := DecodeJSON(r, &cfg); err != nil {
		WriteError(w, err)
		return
	}
	c, err := h.m.Create(r.Context(), cfg)
	answer(w, c, err)
}

func (h *containerHandlers) inspect(w http.ResponseWriter, r *http.Request) {
	c, err := h.m.Get(r.PathValue("id"))
	answer(w, c, err)
}

func (h *containerHandlers) start(w http.ResponseWriter, r *http.Request) {
	answer(w, nil, h.m.Start(context.WithoutCancel(r.Context()), r.PathValue("id")))
}

func (h *containerHandlers) stop(w http.ResponseWriter, r *http.Request) {
	var req StopRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	answer(w, nil, h.m.Stop(context.WithoutCancel(r.Context()), r.PathValue("id"), req.Timeout))
}

func (h *containerHandlers) kill(w http.ResponseWriter, r *http.Request) {
	var req KillRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	sig := syscall.SIGKILL
	if req.Signal != "" {
		s, err := container.ParseSignal(req.Signal)
		if err != nil {
			WriteError(w, errdefs.ErrInvalidArgument.WithMessage(err.Error()))
			return
		}
		sig = s
	}
	answer(w, nil, h.m.Kill(r.Context(), r.PathValue("id"), sig))
}

func (h *containerHandlers) pause(w http.ResponseWriter, r *http.Request) {
	answer(w, nil, h.m.Pause(r.Context(), r.PathValue("id")))
}

func (h *containerHandlers) unpause(w http.ResponseWriter, r *http.Request) {
	answer(w, nil, h.m.Unpause(r.Context(), r.PathValue("id")))
}

func (h *containerHandlers) rename(w http.ResponseWriter, r *http.Request) {
	var req RenameRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	answer(w, nil, h.m.Rename(r.PathValue("id"), req.Name))
}

// wait answers once the container is not running; with
// condition=next-exit it streams, so that the client knows the wait is in
// place (a "waiting" event) before it starts the container.
func (h *containerHandlers) wait(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("condition") != "next-exit" {
		code, err := h.m.Wait(r.Context(), r.PathValue("id"))
		answer(w, WaitResponse{StatusCode: code}, err)
		return
	}
	if _, err := h.m.Get(r.PathValue("id")); err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	code, err := h.m.WaitNextExit(r.Context(), r.PathValue("id"), func() { _ = sw.Event("waiting") })
	sw.Finish(WaitResponse{StatusCode: code}, err)
}

func (h *containerHandlers) remove(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := container.RemoveOptions{Force: q.Get("force") != "", Volumes: q.Get("v") != ""}
	answer(w, nil, h.m.Remove(context.WithoutCancel(r.Context()), r.PathValue("id"), opts))
}

func (h *containerHandlers) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := logs.ReadOptions{Tail: -1, Follow: q.Get("follow") != ""}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			WriteError(w, errdefs.ErrInvalidArgument.WithMessage("tail: want a number or all"))
			return
		}
		opts.Tail = n
	}
	var err error
	if opts.Since, err = parseTime(q.Get("since")); err != nil {
		WriteError(w, err)
		return
	}
	if opts.Until, err = parseTime(q.Get("until")); err != nil {
		WriteError(w, err)
		return
	}
	id := r.PathValue("id")
	if _, err := h.m.Get(id); err != nil {
		WriteError(w, err)
		return
	}
	sw := NewStreamWriter(w)
	err = h.m.Logs(r.Context(), id, opts, func(e logs.Entry) error {
		return sw.Event(LogEntry{Stream: e.Stream, Time: e.Time, Line: string(e.Line)})
	})
	sw.Finish(nil, err)
}

// attach takes over the connection and connects it to the container's
// streams (stdin, stdout, stderr query flags) until its output ends.
func (h *containerHandlers) attach(w http.ResponseWriter, r *http.Request) {
	c, err := h.m.Get(r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	conn, br, err := takeOver(w)
	if err != nil {
		WriteError(w, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	var aio container.AttachIO
	stdout, stderr := outputWriters(conn, c.Config.Tty)
	if q.Get("stdout") != "" {
		aio.Stdout = stdout
	}
	if q.Get("stderr") != "" {
		aio.Stderr = stderr
	}
	if q.Get("stdin") != "" {
		aio.Stdin = clientInput{r: br, cancel: cancel}
	} else {
		// Nothing to read but the client hanging up.
		go func() {
			_, _ = io.Copy(io.Discard, br)
			cancel()
		}()
	}
	// The 101 goes out once the attach is in place, so a client that
	// starts the container after it (run) misses none of its output.
	upgradedOK := false
	aio.Attached = func() { upgradedOK = upgraded(conn) == nil }
	if err := h.m.Attach(ctx, c.ID, aio); err != nil && !upgradedOK {
		rawError(conn, err)
	}
}

func (h *containerHandlers) resize(w http.ResponseWriter, r *http.Request) {
	rows, cols, err := windowSize(r.URL.Query())
	if err != nil {
		WriteError(w, err)
		return
	}
	answer(w, nil, h.m.Resize(r.PathValue("id"), rows, cols))
}

func windowSize(q url.Values) (rows, cols uint, err error) {
	h, err1 := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(q.Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.ErrInvalidArgument.WithMessage("resize: h and w must be numbers of rows and columns")
	}
	return uint(h), uint(wd), nil
}

func (h *containerHandlers) top(w http.ResponseWriter, r *http.Request) {
	var args []string
	if a := r.URL.Query().Get("ps_args"); a != "" {
		args = strings.Fields(a)
	}
	t, err := h.m.Top(r.Context(), r.PathValue("id"), args)
	answer(w, t, err)
}

// stats streams a sample a second while the container runs; with
// stream=0, two samples a second apart (CPU use needs two).
func (h *containerHandlers) stats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	first, err := h.m.Stats(r.Context(), id)
	if err != nil {
		WriteError(w, err)
		return
	}
	stream := r.URL.Query().Get("stream") != "0"
	sw := NewStreamWriter(w)
	if err := sw.Event(first); err != nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; stream || n < 2; n++ {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		st, err := h.m.Stats(r.Context(), id)
		if err != nil {
			sw.Finish(nil, nil) // it stopped
			return
		}
		if err := sw.Event(st); err != nil {
			return
		}
	}
	sw.Finish(nil, nil)
}

func (h *containerHandlers) execCreate(w http.ResponseWriter, r *http.Request) {
	var cfg container.ExecConfig
	if err := DecodeJSON(r, &cfg); err != nil {
		WriteError(w, err)
		return
	}
	id, err := h.m.CreateExec(r.PathValue("id"), cfg)
	answer(w, ExecCreateResponse{ID: id}, err)
}

// execStart runs an exec: detached, or on the taken-over connection. An
// exec that cannot start says why on its error stream; its exit code
// (126, 127) is in its state.
func (h *containerHandlers) execStart(w http.ResponseWriter, r *http.Request) {
	var req ExecStartRequest
	if err := DecodeJSON(r, &req); err != nil {
		WriteError(w, err)
		return
	}
	id := r.PathValue("id")
	st, err := h.m.InspectExec(id)
	if err != nil {
		WriteError(w, err)
		return
	}
	if req.Detach {
		errc := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			_, err := h.m.StartExec(context.Background(), id, container.ExecIO{Started: func() { close(started) }})
			errc <- err
		}()
		// Answered once the process runs, or with why it could not.
		select {
		case err := <-errc:
			answer(w, nil, err)
		case <-started:
			answer(w, nil, nil)
		}
		return
	}
	conn, br, err := hijack(w)
	if err != nil {
		WriteError(w, err)
		return
	}
	defer conn.Close()
	var eio container.ExecIO
	eio.Stdout, eio.Stderr = outputWriters(conn, st.Config.Tty)
	if st.Config.AttachStdin {
		eio.Stdin = br
	}
	if _, err := h.m.StartExec(context.WithoutCancel(r.Context()), id, eio); err != nil {
		_, _ = io.WriteString(eio.Stderr, err.Error()+"\n")
	}
}

func (h *containerHandlers) execResize(w http.ResponseWriter, r *http.Request) {
	rows, cols, err := windowSize(r.URL.Query())
	if err != nil {
		WriteError(w, err)
		return
	}
	answer(w, nil, h.m.ResizeExec(r.PathValue("id"), rows, cols))
}

func (h *containerHandlers) execInspect(w http.ResponseWriter, r *http.Request) {
	st, err := h.m.InspectExec(r.PathValue("id"))
	answer(w, st, err)
}

// parseTime reads a time as docker's --since takes it: RFC 3339, a Unix
// timestamp, or a duration before now ("10m").
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid time %q: want RFC 3339, a Unix timestamp or a duration such as 10m", s))
}

func (h *containerHandlers) events(w http.ResponseWriter, r *http.Request) {
	sel := labelFilter(r.URL.Query())
	sw := NewStreamWriter(w)
	_ = sw.Event(container.Event{Action: "subscribed"}) // tells the client the stream is live
	for ev := range h.m.Subscribe(r.Context()) {
		if !labels.Match(ev.Labels, sel) {
			continue
		}
		if sw.Event(ev) != nil {
			return
		}
	}
}

// ContainerClient reaches a daemon's containers.
type ContainerClient struct{ c *Client }

// Containers returns the client of the daemon's containers.
func (c *Client) Containers() *ContainerClient { return &ContainerClient{c: c} }

func containersPath(parts ...string) string {
	p := "/" + Version + "/containers"
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// List returns the containers that opts select.
func (cc *ContainerClient) List(ctx context.Context, opts container.ListOptions) ([]container.Container, error) {
	q := url.Values{}
	if opts.All {
		q.Set("all", "1")
	}
	for k, v := range opts.Labels {
		q.Add("label", k+"="+v)
	}
	var out []container.Container
	err := cc.c.Call(ctx, http.MethodGet, containersPath()+"?"+q.Encode(), nil, &out)
	return out, err
}

// Create makes a container.
func (cc *ContainerClient) Create(ctx context.Context, cfg container.Config) (container.Container, error) {
	var out container.Container
	err := cc.c.Call(ctx, http.MethodPost, containersPath(), cfg, &out)
	return out, err
}

// Inspect returns a container's record.
func (cc *ContainerClient) Inspect(ctx context.Context, ref string) (container.Container, error) {
	var out container.Container
	err := cc.c.Call(ctx, http.MethodGet, containersPath(ref), nil, &out)
	return out, err
}

// Start starts a container.
func (cc *ContainerClient) Start(ctx context.Context, ref string) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "start"), nil, nil)
}

// Stop stops a container.
func (cc *ContainerClient) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "stop"), StopRequest{Timeout: timeout}, nil)
}

// Kill signals a container ("" is SIGKILL).
func (cc *ContainerClient) Kill(ctx context.Context, ref, signal string) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "kill"), KillRequest{Signal: signal}, nil)
}

// Pause freezes a container.
func (cc *ContainerClient) Pause(ctx context.Context, ref string) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "pause"), nil, nil)
}

// Unpause thaws a container.
func (cc *ContainerClient) Unpause(ctx context.Context, ref string) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "unpause"), nil, nil)
}

// Rename renames a container.
func (cc *ContainerClient) Rename(ctx context.Context, ref, name string) error {
	return cc.c.Call(ctx, http.MethodPost, containersPath(ref, "rename"), RenameRequest{Name: name}, nil)
}

// Wait blocks until the container stops and returns its exit code.
func (cc *ContainerClient) Wait(ctx context.Context, ref string) (int, error) {
	var out WaitResponse
	err := cc.c.Call(ctx, http.MethodPost, containersPath(ref, "wait"), nil, &out)
	return out.StatusCode, err
}

// Remove deletes a container.
func (cc *ContainerClient) Remove(ctx context.Context, ref string, opts container.RemoveOptions) error {
	q := url.Values{}
	if opts.Force {
		q.Set("force", "1")
	}
	if opts.Volumes {
		q.Set("v", "1")
	}
	return cc.c.Call(ctx, http.MethodDelete, containersPath(ref)+"?"+q.Encode(), nil, nil)
}

// LogsOptions are `logs`' flags, as the API takes them.
type LogsOptions struct {
	Follow       bool
	Tail         string // a number or "all"
	Since, Until string
}

// Logs calls fn for each log entry of the container.
func (cc *ContainerClient) Logs(ctx context.Context, ref string, opts LogsOptions, fn func(LogEntry) error) error {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Tail != "" {
		q.Set("tail", opts.Tail)
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Until != "" {
		q.Set("until", opts.Until)
	}
	return cc.c.Stream(ctx, http.MethodGet, containersPath(ref, "logs")+"?"+q.Encode(), nil, func(raw json.RawMessage) error {
		var e LogEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		return fn(e)
	}, nil)
}

// Events streams container events whose labels match until ctx ends. It
// returns once the subscription is live.
func (cc *ContainerClient) Events(ctx context.Context, labels map[string]string) (<-chan container.Event, <-chan error) {
	q := url.Values{}
	for k, v := range labels {
		q.Add("label", k+"="+v)
	}
	ch := make(chan container.Event, 64)
	errc := make(chan error, 1)
	live := make(chan struct{})
	go func() {
		defer close(ch)
		first := true
		errc <- cc.c.Stream(ctx, http.MethodGet, "/"+Version+"/events?"+q.Encode(), nil, func(raw json.RawMessage) error {
			var ev container.Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				return err
			}
			if first {
				first = false
				close(live)
				return nil
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
			}
			return nil
		}, nil)
		if first {
			close(live)
		}
	}()
	<-live
	return ch, errc
}

// AttachOptions select the streams of an attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// Attach takes over a connection for the container's streams: write its
// input, read its output (raw with a tty, else through Demux). On a
// container that does not run yet, the output starts with its next start.
func (cc *ContainerClient) Attach(ctx context.Context, ref string, opts AttachOptions) (*HijackedConn, error) {
	q := url.Values{}
	for name, on := range map[string]bool{"stdin": opts.Stdin, "stdout": opts.Stdout, "stderr": opts.Stderr} {
		if on {
			q.Set(name, "1")
		}
	}
	return cc.c.hijack(ctx, http.MethodPost, containersPath(ref, "attach")+"?"+q.Encode(), nil)
}

// Resize sets a terminal container's window size.
func (cc *ContainerClient) Resize(ctx context.Context, ref string, rows, cols uint) error {
	return cc.c.Call(ctx, http.MethodPost, fmt.Sprintf("%s?h=%d&w=%d", containersPath(ref, "resize"), rows, cols), nil, nil)
}

// WaitResult is the end of a wait.
type WaitResult struct {
	StatusCode int
	Err        error
}

// WaitNextExit waits for the container's next exit. It returns once the
// wait is in place (so a start after it cannot be missed); the channel
// gets the exit code.
func (cc *ContainerClient) WaitNextExit(ctx context.Context, ref string) (<-chan WaitResult, error) {
	out := make(chan WaitResult, 1)
	live := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		var resp WaitResponse
		first := true
		err := cc.c.Stream(ctx, http.MethodPost, containersPath(ref, "wait")+"?condition=next-exit", nil, func(json.RawMessage) error {
			if first {
				first = false
				close(live)
			}
			return nil
		}, &resp)
		if first {
			errc <- err
			return
		}
		out <- WaitResult{StatusCode: resp.StatusCode, Err: err}
	}()
	select {
	case <-live:
		return out, nil
	case err := <-errc:
		if err == nil {
			err = fmt.Errorf("wait %s: the daemon ended the wait before it was in place", ref)
		}
		return nil, err
	}
}

// Top lists the container's processes; psArgs are ps options.
func (cc *ContainerClient) Top(ctx context.Context, ref string, psArgs []string) (container.Top, error) {
	var t container.Top
	q := url.Values{}
	if len(psArgs) > 0 {
		q.Set("ps_args", strings.Join(psArgs, " "))
	}
	err := cc.c.Call(ctx, http.MethodGet, containersPath(ref, "top")+"?"+q.Encode(), nil, &t)
	return t, err
}

// Stats calls fn with the container's samples: one a second while it
// runs, or (stream false) two a second apart.
func (cc *ContainerClient) Stats(ctx context.Context, ref string, stream bool, fn func(container.Stats) error) error {
	q := "?stream=1"
	if !stream {
		q = "?stream=0"
	}
	return cc.c.Stream(ctx, http.MethodGet, containersPath(ref, "stats")+q, nil, func(raw json.RawMessage) error {
		var st container.Stats
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		return fn(st)
	}, nil)
}

// CreateExec prepares a process to run in the container and returns its id.
func (cc *ContainerClient) CreateExec(ctx context.Context, ref string, cfg container.ExecConfig) (string, error) {
	var out ExecCreateResponse
	err := cc.c.Call(ctx, http.MethodPost, containersPath(ref, "exec"), cfg, &out)
	return out.ID, err
}

func execPath(id string, parts ...string) string {
	p := "/" + Version + "/exec/" + url.PathEscape(id)
	for _, s := range parts {
		p += "/" + s
	}
	return p
}

// StartExec runs an exec and takes over a connection for its streams;
// its exit code is in InspectExec once the output ended.
func (cc *ContainerClient) StartExec(ctx context.Context, id string) (*HijackedConn, error) {
	return cc.c.hijack(ctx, http.MethodPost, execPath(id, "start"), ExecStartRequest{})
}

// StartExecDetached runs an exec in the background.
func (cc *ContainerClient) StartExecDetached(ctx context.Context, id string) error {
	return cc.c.Call(ctx, http.MethodPost, execPath(id, "start"), ExecStartRequest{Detach: true}, nil)
}

// ResizeExec sets an exec's window size.
func (cc *ContainerClient) ResizeExec(ctx context.Context, id string, rows, cols uint) error {
	return cc.c.Call(ctx, http.MethodPost, fmt.Sprintf("%s?h=%d&w=%d", execPath(id, "resize"), rows, cols), nil, nil)
}

// InspectExec returns an exec's state.
func (cc *ContainerClient) InspectExec(ctx context.Context, id string) (container.ExecState, error) {
	var st container.ExecState
	err := cc.c.Call(ctx, http.MethodGet, execPath(id, "json"), nil, &st)
	return st, err
}
