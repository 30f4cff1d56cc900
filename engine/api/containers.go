package api

import (
	"context"
	"fmt"
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
	"github.com/berth-dev/berth/internal/labels"
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
	for i := range out {
		out[i] = withoutFileContents(out[i])
	}
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
	answer(w, withoutFileContents(c), err)
}

// withoutFileContents keeps the contents of a container's secrets and
// configs out of what the API shows (inspect, ls): secrets are files so
// that they do not show where environment variables do. The daemon still
// has them, to write at each start.
func withoutFileContents(c container.Container) container.Container {
	if len(c.Config.Files) == 0 {
		return c
	}
	files := make([]container.File, len(c.Config.Files))
	for i, f := range c.Config.Files {
		f.Content = nil
		files[i] = f
	}
	c.Config.Files = files
	return c
}

func (h *containerHandlers) inspect(w http.ResponseWriter, r *http.Request) {
	c, err := h.m.Get(r.PathValue("id"))
	answer(w, withoutFileContents(c), err)
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
