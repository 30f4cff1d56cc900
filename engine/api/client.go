package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// Client talks to a berth daemon.
type Client struct {
	host string
	http *http.Client
}

// NewClient returns a client for the daemon listening at host, a
// "unix:///path/to.sock" address (a bare path is taken as a unix socket).
func NewClient(host string) (*Client, error) {
	path, err := SocketPath(host)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{host: host, http: &http.Client{Transport: transport}}, nil
}

// SocketPath returns the file system path of a unix:// host address.
func SocketPath(host string) (string, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		return strings.TrimPrefix(host, "unix://"), nil
	case strings.HasPrefix(host, "/"):
		return host, nil
	}
	return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("host %q: only unix:///path addresses are supported", host))
}

// Host is the address the client was made for.
func (c *Client) Host() string { return c.host }

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Ping reports whether a daemon answers on the socket.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, http.MethodGet, "/_ping", nil, nil)
}

// Version returns the daemon's side of `berth version`.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.Call(ctx, http.MethodGet, "/"+Version+"/version", nil, &v)
	return v, err
}

// Call sends in (when not nil) as a JSON body and decodes the answer into
// out (when not nil). An error answer comes back as an error of its class.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Do sends a request and returns the response of a successful call, whose
// body the caller must close. Error answers come back as errors.
func (c *Client) Do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		if r, ok := in.(io.Reader); ok {
			body = r
		} else {
			b, err := json.Marshal(in)
			if err != nil {
				return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
			}
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		if _, ok := in.(io.Reader); ok {
			req.Header.Set("Content-Type", "application/octet-stream")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("cannot reach the berth daemon at %s: %v", c.host, err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) != nil || eb.Message == "" {
		eb.Message = strings.TrimSpace(string(b))
		if eb.Message == "" {
			eb.Message = resp.Status
		}
	}
	return ErrorFromStatus(resp.StatusCode, eb.Message)
}

// Stream sends in and reads a streamed answer: onEvent gets each event's
// JSON as it arrives, out (when not nil) the final result. A final error
// line comes back as an error of its class.
func (c *Client) Stream(ctx context.Context, method, path string, in any, onEvent func(json.RawMessage) error, out any) error {
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var m StreamMessage
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				return fmt.Errorf("%s %s: bad stream line: %w", method, path, jerr)
			}
			switch m.Kind {
			case "event":
				if onEvent != nil {
					if err := onEvent(m.Event); err != nil {
						return err
					}
				}
			case "result":
				if out != nil && len(m.Result) > 0 {
					return json.Unmarshal(m.Result, out)
				}
				return nil
			case "error":
				return ErrorFromStatus(m.Status, m.Error)
			}
		}
		if err == io.EOF {
			return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("%s %s: the daemon ended the stream without a result", method, path))
		}
		if err != nil {
			return fmt.Errorf("%s %s: read stream: %w", method, path, err)
		}
	}
}
