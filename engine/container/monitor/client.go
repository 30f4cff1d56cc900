package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Streams are a container's stdio descriptors: duplicates of the
// monitor's, which the daemon keeps so that the monitor is not the only
// holder (see the package doc). Any may be nil.
type Streams struct {
	Stdout, Stderr *os.File // read ends of the output pipes
	Stdin          *os.File // write end of the stdin pipe
	Pty            *os.File // pty master of a terminal container
}

// Close closes every descriptor.
func (s *Streams) Close() {
	if s == nil {
		return
	}
	for _, f := range []*os.File{s.Stdout, s.Stderr, s.Stdin, s.Pty} {
		if f != nil {
			f.Close()
		}
	}
	*s = Streams{}
}

// list names the open descriptors, for adopt.
func (s *Streams) list() (names []string, fds []int) {
	if s == nil {
		return nil, nil
	}
	for _, it := range []struct {
		name string
		f    *os.File
	}{{StreamStdout, s.Stdout}, {StreamStderr, s.Stderr}, {StreamStdin, s.Stdin}, {StreamPty, s.Pty}} {
		if it.f == nil {
			continue
		}
		// Not Fd(): it would make the descriptor blocking, and the mode is
		// shared with every duplicate (the monitor's pty master included).
		rc, err := it.f.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			names, fds = append(names, it.name), append(fds, int(fd))
		})
	}
	return names, fds
}

// streamsOf turns received descriptors into Streams.
func streamsOf(names []string, fds []int) *Streams {
	s := &Streams{}
	for i, fd := range fds {
		name := ""
		if i < len(names) {
			name = names[i]
		}
		if name == StreamStdin {
			// Non-blocking (the monitor never writes it, the container's
			// end is another open file), so a write stuck on a container
			// that does not read can be abandoned by closing the file.
			_ = unix.SetNonblock(fd, true)
		}
		f := os.NewFile(uintptr(fd), "container "+name)
		switch name {
		case StreamStdout:
			s.Stdout = f
		case StreamStderr:
			s.Stderr = f
		case StreamStdin:
			s.Stdin = f
		case StreamPty:
			s.Pty = f
		default:
			f.Close()
		}
	}
	return s
}

func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return conn.(*net.UnixConn), nil
}

// call sends req (with fds) and reads one answer (with its fds).
func (c *Client) call(ctx context.Context, req Request, fds ...int) (Response, []int, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return Response{}, nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeJSON(conn, req, fds...); err != nil {
		return Response{}, nil, fmt.Errorf("monitor %s: %w", req.Op, err)
	}
	var resp Response
	got, err := readJSON(conn, &resp)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, nil, ctx.Err()
		}
		return Response{}, nil, fmt.Errorf("monitor %s: no answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		closeFds(got)
		return resp, nil, errors.New(resp.Error)
	}
	return resp, got, nil
}

// Ping returns the monitor's pid and version when it answers.
func (c *Client) Ping(ctx context.Context) (Response, error) {
	resp, fds, err := c.call(ctx, Request{Op: "ping"})
	closeFds(fds)
	return resp, err
}

// Create has the monitor create a container from bundle, logging its output
// as req.Log says and recording its exit in req.ExitFile. It returns the
// pid of the container's first process, which waits for Start, and
// duplicates of its stdio descriptors.
func (c *Client) Create(ctx context.Context, req Request) (int, *Streams, error) {
	req.Op = "create"
	resp, fds, err := c.call(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	return resp.Pid, streamsOf(resp.Streams, fds), nil
}

// Prepare has the monitor start the setup stage of container req.ID
// (whose spec will list req.Namespaces, with req.Stdin and req.Terminal
// as its create will ask) ahead of its create, which takes it. It returns
// once the stage is reserved; a later Create finds it.
func (c *Client) Prepare(ctx context.Context, req Request) error {
	req.Op = "prepare"
	_, fds, err := c.call(ctx, req)
	closeFds(fds)
	return err
}

// Discard ends container id's prepared setup stage, if it has one.
func (c *Client) Discard(ctx context.Context, id string) error {
	_, fds, err := c.call(ctx, Request{Op: "discard", ID: id})
	closeFds(fds)
	return err
}

// Start releases a created container to run its process.
func (c *Client) Start(ctx context.Context, id string) error {
	_, _, err := c.call(ctx, Request{Op: "start", ID: id})
	return err
}

// List returns the containers whose first process still runs.
func (c *Client) List(ctx context.Context) ([]Container, error) {
	resp, _, err := c.call(ctx, Request{Op: "list"})
	return resp.Containers, err
}

// CloseStdin closes the monitor's end of a container's stdin (the
// daemon closes its own duplicate), so the container reads EOF.
func (c *Client) CloseStdin(ctx context.Context, id string) error {
	_, _, err := c.call(ctx, Request{Op: "closestdin", ID: id})
	return err
}

// Adopt hands the monitor a container whose monitor died: its first
// process and the stdio descriptors the daemon kept.
func (c *Client) Adopt(ctx context.Context, req Request, s *Streams) error {
	req.Op = "adopt"
	req.Streams, _ = s.list()
	_, fds := s.list()
	_, _, err := c.call(ctx, req, fds...)
	return err
}

// ContainerStreams are one running container's stdio descriptors.
type ContainerStreams struct {
	Container
	Streams *Streams
}

// Streams returns duplicates of the stdio descriptors of every running
// container, by id.
func (c *Client) Streams(ctx context.Context) (map[string]ContainerStreams, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := writeJSON(conn, Request{Op: "streams"}); err != nil {
		return nil, fmt.Errorf("monitor streams: %w", err)
	}
	out := map[string]ContainerStreams{}
	for {
		var resp Response
		fds, err := readJSON(conn, &resp)
		if err != nil {
			for _, cs := range out {
				cs.Streams.Close()
			}
			return nil, fmt.Errorf("monitor streams: %w", err)
		}
		if resp.Error != "" {
			closeFds(fds)
			return nil, errors.New(resp.Error)
		}
		if resp.Done {
			return out, nil
		}
		if len(resp.Containers) != 1 {
			closeFds(fds)
			continue
		}
		ct := resp.Containers[0]
		out[ct.ID] = ContainerStreams{Container: ct, Streams: streamsOf(resp.Streams, fds)}
	}
}

// Attachment is a live copy of a container's raw output.
type Attachment struct {
	conn *net.UnixConn
}

// Attach returns a copy of id's output from now on.
func (c *Client) Attach(ctx context.Context, id string) (*Attachment, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	if err := writeJSON(conn, Request{Op: "attach", ID: id}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor attach: %w", err)
	}
	var resp Response
	if _, err := readJSON(conn, &resp); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor attach: %w", err)
	}
	if resp.Error != "" {
		conn.Close()
		return nil, errors.New(resp.Error)
	}
	return &Attachment{conn: conn}, nil
}

// ErrDetached is Next's error when the monitor went away before the
// output ended (it was killed or it is upgrading): attach again.
var ErrDetached = errors.New("monitor: attach stream cut before the output ended")

// Next returns the next piece of output and its stream (FrameStdout or
// FrameStderr; a terminal's output is FrameStdout). It returns io.EOF
// when the container's output ended, ErrDetached when the monitor went.
func (a *Attachment) Next() (byte, []byte, error) {
	for {
		kind, payload, fds, err := readFrame(a.conn)
		closeFds(fds)
		if err != nil {
			return 0, nil, ErrDetached
		}
		switch kind {
		case FrameStdout, FrameStderr:
			return kind, payload, nil
		case FrameEnd:
			return 0, nil, io.EOF
		}
	}
}

// Close ends the attachment.
func (a *Attachment) Close() error { return a.conn.Close() }

// Upgrade has the monitor re-execute itself from binary, keeping its
// containers; it returns once the new monitor answers.
func (c *Client) Upgrade(ctx context.Context, binary string) (Response, error) {
	resp, fds, err := c.call(ctx, Request{Op: "upgrade", Binary: binary})
	closeFds(fds)
	return resp, err
}

// Shutdown ends the monitor; with ifIdle only when no container runs.
func (c *Client) Shutdown(ctx context.Context, ifIdle bool) error {
	_, _, err := c.call(ctx, Request{Op: "shutdown", IfIdle: ifIdle})
	return err
}

// Subscribe returns the exits the monitor records from now on. The channel
// closes when ctx ends or the monitor goes away; Subscribe returns once the
// subscription is live, so exit files read after it returns plus the
// channel miss nothing.
func (c *Client) Subscribe(ctx context.Context) (<-chan Exit, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	if err := writeJSON(conn, Request{Op: "subscribe"}); err != nil {
		conn.Close()
		return nil, err
	}
	var first Exit
	if _, err := readJSON(conn, &first); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor subscribe: %w", err)
	}
	ch := make(chan Exit, 64)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer conn.Close()
		for {
			var e Exit
			if _, err := readJSON(conn, &e); err != nil {
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
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := c.Ping(pingCtx)
	cancel()
	if err == nil {
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
