package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// Attach and exec streams take over their HTTP connection, as docker's
// do: the client sends its request with "Connection: Upgrade" and
// "Upgrade: tcp", the server answers 101 and from then on the connection
// carries raw bytes both ways. Client to server: the process's input; the
// client half-closes (shutdown(SHUT_WR)) when its input ends. Server to
// client: with a tty, the raw output; without one, multiplexed frames, an
// 8-byte header (stream: 1 stdout, 2 stderr; three zero bytes; the
// payload's length, big-endian uint32) before each payload. The server
// closes the connection when the output ended.

// Stream numbers of multiplexed frames.
const (
	StreamStdout byte = 1
	StreamStderr byte = 2
)

// takeOver takes the connection of an Upgrade request away from the HTTP
// server; the caller answers on it with upgraded (or rawError).
func takeOver(w http.ResponseWriter) (net.Conn, *bufio.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be taken over")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, rw.Reader, nil
}

// upgraded answers 101: the connection carries raw streams from now on.
func upgraded(conn net.Conn) error {
	_, err := io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	return err
}

// rawError answers a taken-over connection that never upgraded with err.
func rawError(conn net.Conn, err error) {
	body, _ := json.Marshal(ErrorBody{Message: err.Error()})
	status := StatusOf(err)
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, http.StatusText(status), len(body), body)
}

// hijack takes the connection over and answers 101 at once.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.Reader, error) {
	conn, br, err := takeOver(w)
	if err != nil {
		return nil, nil, err
	}
	if err := upgraded(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, br, nil
}

// muxWriter writes one stream's frames on a shared connection.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (m muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = m.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return m.w.Write(p)
}

// outputWriters are the writers of a hijacked connection: one raw writer
// (tty) or two multiplexed ones.
func outputWriters(conn io.Writer, tty bool) (stdout, stderr io.Writer) {
	if tty {
		return conn, conn
	}
	mu := &sync.Mutex{}
	return muxWriter{mu: mu, w: conn, stream: StreamStdout}, muxWriter{mu: mu, w: conn, stream: StreamStderr}
}

// clientInput reads a hijacked connection's input; a read error other than
// the client's half-close (EOF) means the client is gone, and cancels.
type clientInput struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c clientInput) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		c.cancel()
	}
	return n, err
}

// HijackedConn is the client's side of an attach or exec stream.
type HijackedConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// Read reads the output (raw with a tty; demultiplex with Demux otherwise).
func (h *HijackedConn) Read(p []byte) (int, error) { return h.r.Read(p) }

// Write sends input.
func (h *HijackedConn) Write(p []byte) (int, error) { return h.conn.Write(p) }

// CloseWrite tells the server the input ended.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close ends the stream.
func (h *HijackedConn) Close() error { return h.conn.Close() }

// hijack sends an Upgrade request on a connection of its own and returns
// it once the server switched protocols.
func (c *Client) hijack(ctx context.Context, method, path string, in any) (*HijackedConn, error) {
	sock, err := SocketPath(c.host)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("cannot reach the berth daemon at %s: %v", c.host, err))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return nil, readError(resp)
		}
		return nil, fmt.Errorf("%s %s: the daemon did not take over the connection (%s)", method, path, resp.Status)
	}
	return &HijackedConn{conn: conn, r: br}, nil
}

// Demux copies a multiplexed stream's frames to stdout and stderr until
// it ends.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		w := stdout
		if hdr[0] == StreamStderr {
			w = stderr
		}
		if w == nil {
			w = io.Discard
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		for n > 0 {
			chunk := buf[:min(int64(len(buf)), n)]
			if _, err := io.ReadFull(r, chunk); err != nil {
				return err
			}
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			n -= int64(len(chunk))
		}
	}
}
