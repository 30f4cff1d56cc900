package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Client talks to the monitor of one state root.
type Client struct {
	root string
	sock string
}

// NewClient returns a client for the monitor of root; it does not connect.
func NewClient(root string) *Client {
	return &Client{root: root, sock: filepath.Join(root, SocketName)}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", c.sock)
}

func (c *Client) call(ctx context.Context, req Request) (Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return Response{}, fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("monitor %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("monitor %s: no answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Ping returns the monitor's pid and version when it answers.
func (c *Client) Ping(ctx context.Context) (Response, error) {
	return c.call(ctx, Request{Op: "ping"})
}

// Create has the monitor create a container from bundle, logging its output
// as log says and recording its exit in exitFile. It returns the pid of the
// container's first process, which waits for Start.
func (c *Client) Create(ctx context.Context, req Request) (int, error) {
	req.Op = "create"
	resp, err := c.call(ctx, req)
	return resp.Pid, err
}

// Start releases a created container to run its process.
func (c *Client) Start(ctx context.Context, id string) error {
	_, err := c.call(ctx, Request{Op: "start", ID: id})
	return err
}

// List returns the containers whose first process still runs.
func (c *Client) List(ctx context.Context) ([]Container, error) {
	resp, err := c.call(ctx, Request{Op: "list"})
	return resp.Containers, err
}

// Shutdown ends the monitor; with ifIdle only when no container runs.
func (c *Client) Shutdown(ctx context.Context, ifIdle bool) error {
	_, err := c.call(ctx, Request{Op: "shutdown", IfIdle: ifIdle})
	return err
}

// Subscribe returns the exits the monitor records from now on. The channel
// closes when ctx ends or the monitor goes away; Subscribe returns once the
// subscription is live, so exit files read after it returns plus the
// channel miss nothing.
func (c *Client) Subscribe(ctx context.Context) (<-chan Exit, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if err := json.NewEncoder(conn).Encode(Request{Op: "subscribe"}); err != nil {
		conn.Close()
		return nil, err
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	var first Exit
	if err := dec.Decode(&first); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor subscribe: %w", err)
	}
	ch := make(chan Exit, 64)
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go func() {
		defer close(ch)
		defer conn.Close()
		for {
			var e Exit
			if err := dec.Decode(&e); err != nil {
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Ensure returns a client for root's monitor, starting the monitor from
// binary when none answers. The monitor runs in its own session so that it
// outlives whoever started it.
func Ensure(ctx context.Context, root, binary string) (*Client, error) {
	c := NewClient(root)
	if _, err := c.Ping(ctx); err == nil {
		return c, nil
	}
	lock, err := os.OpenFile(filepath.Join(root, "monitor-start.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("monitor start lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("monitor start lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if _, err := c.Ping(ctx); err == nil {
		return c, nil
	}
	logPath := filepath.Join(root, "monitor.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("monitor log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary, Entry, root)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if _, err := c.Ping(ctx); err == nil {
			return c, nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("monitor exited at start (%v): %s", err, lastLine(b))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("monitor did not answer within 10s; see %s", logPath)
		}
	}
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
