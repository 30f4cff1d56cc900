package monitor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// maxFrame bounds a frame, so a confused peer cannot make us allocate much.
const maxFrame = 16 << 20

// maxFds is the most descriptors one frame carries (one container's).
const maxFds = 8

// writeFrame sends one frame, with fds attached to its first byte.
func writeFrame(c *net.UnixConn, kind byte, payload []byte, fds ...int) error {
	buf := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(1+len(payload)))
	buf[4] = kind
	copy(buf[5:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.WriteMsgUnix(buf, oob, nil)
	if err != nil {
		return err
	}
	for n < len(buf) {
		m, err := c.Write(buf[n:])
		if err != nil {
			return err
		}
		n += m
	}
	return nil
}

// writeJSON sends v as a JSON frame.
func writeJSON(c *net.UnixConn, v any, fds ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(c, FrameJSON, b, fds...)
}

// readFrame reads one frame and the descriptors that came with it; they
// are close-on-exec and the caller's to close.
func readFrame(c *net.UnixConn) (kind byte, payload []byte, fds []int, err error) {
	var hdr [5]byte
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	got := 0
	for got < len(hdr) {
		n, oobn, _, _, err := c.ReadMsgUnix(hdr[got:], oob)
		if oobn > 0 {
			more, perr := parseRights(oob[:oobn])
			fds = append(fds, more...)
			if perr != nil {
				closeFds(fds)
				return 0, nil, nil, perr
			}
		}
		if err != nil {
			closeFds(fds)
			if errors.Is(err, io.EOF) && got > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, nil, err
		}
		if n == 0 {
			closeFds(fds)
			if got > 0 {
				return 0, nil, nil, io.ErrUnexpectedEOF
			}
			return 0, nil, nil, io.EOF
		}
		got += n
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < 1 || size > maxFrame {
		closeFds(fds)
		return 0, nil, nil, fmt.Errorf("monitor wire: bad frame size %d", size)
	}
	payload = make([]byte, size-1)
	if _, err := io.ReadFull(c, payload); err != nil {
		closeFds(fds)
		return 0, nil, nil, err
	}
	return hdr[4], payload, fds, nil
}

// readJSON reads a JSON frame into v.
func readJSON(c *net.UnixConn, v any) ([]int, error) {
	kind, payload, fds, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	if kind != FrameJSON {
		closeFds(fds)
		return nil, fmt.Errorf("monitor wire: want a JSON frame, got kind %d", kind)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		closeFds(fds)
		return nil, fmt.Errorf("monitor wire: %w", err)
	}
	return fds, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
