package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/container"
)

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
// gets the exit code, for a --rm container once it is removed.
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
