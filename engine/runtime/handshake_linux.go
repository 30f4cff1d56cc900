package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// channel is one end of the handshake's socket pair. Its descriptor is
// non-blocking and served by Go's poller: a goroutine waiting for the
// other side parks instead of holding a thread in a blocking syscall,
// which the Go scheduler answers by waking and starting threads (on a
// container start that churn costs milliseconds of system time).
type channel struct {
	fd int
	f  *os.File
	rc syscall.RawConn
}

// newChannel takes ownership of fd.
func newChannel(fd int) (*channel, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "handshake")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &channel{fd: fd, f: f, rc: rc}, nil
}

// newChannelPair returns the parent's and the child's ends, close-on-exec
// (the child's end is passed explicitly and made close-on-exec again by
// the child, so that the user's process never inherits it).
func newChannelPair() (parent, child int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	// A bootstrap carries the whole spec; let it be larger than the default
	// socket buffer when it must (root may force the size).
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	_ = unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	return fds[0], fds[1], nil
}

func (c *channel) send(m *message, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	werr := c.rc.Write(func(fd uintptr) bool {
		err = unix.Sendmsg(int(fd), b, oob, nil, unix.MSG_NOSIGNAL)
		return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

// recv reads one message and the descriptors sent with it; io.EOF when
// the other end is closed.
func (c *channel) recv() (*message, []int, error) {
	var n, flags int
	var err error
	peek := make([]byte, 1)
	rerr := c.rc.Read(func(fd uintptr) bool {
		// Learn the packet's size first: MSG_TRUNC makes recvmsg return it.
		n, _, flags, _, err = unix.Recvmsg(int(fd), peek, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("receive: %w", err)
	}
	if n == 0 && flags&unix.MSG_TRUNC == 0 {
		return nil, nil, io.EOF
	}
	buf := make([]byte, n)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var oobn int
	rerr = c.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, err = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("receive: %w", err)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return nil, nil, errors.New("receive: message truncated")
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, fmt.Errorf("receive: %w", err)
		}
		for _, cm := range cmsgs {
			if rights, err := unix.ParseUnixRights(&cm); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	m := &message{}
	if err := json.Unmarshal(buf[:n], m); err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("receive: %w", err)
	}
	return m, fds, nil
}

// readable says whether a message (or the other end's close) waits.
func (c *channel) readable() bool {
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

func (c *channel) close() error { return c.f.Close() }
