package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/internal/atomicfile"
)

// Runtime is what the monitor needs of the OCI runtime: create a container
// whose first process is a child of this process, with the given stdio, and
// release it to run the user's process.
type Runtime interface {
	Create(ctx context.Context, id, bundle string, stdio Stdio) (pid int, err error)
	Start(ctx context.Context, id string) error
}

// Stdio is the container's standard streams, as the monitor made them.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// drainTimeout bounds how long an exit waits for the container's output
// pipes to close: processes outside the container's pid namespace (pid:
// host, shared namespaces) may hold them open after the first process ends.
const drainTimeout = 2 * time.Second

// Server is the monitor process's state.
type Server struct {
	root    string
	rt      Runtime
	log     *slog.Logger
	version string

	epfd int
	ln   *net.UnixListener
	stop chan struct{}

	mu          sync.Mutex // guards the maps and each container's fields below
	watches     map[int32]*watch
	containers  map[string]*container
	subscribers map[chan Exit]struct{}
}

type container struct {
	id       string
	pid      int
	pidfd    int
	exitFile string
	log      *logs.Writer
	stdin    *os.File // write end of the container's stdin, when kept
	open     int      // output pipes not yet at EOF
	exit     *Exit    // set once reaped
	recorded bool     // exit file written and subscribers told
}

type watch struct {
	c       *container
	fd      int
	stream  string // "stdout", "stderr", or "" for the pidfd
	partial []byte // a line not yet ended; touched by the loop only
}

// Serve runs the monitor for root until a shutdown request. It is the body
// of the hidden entry point.
func Serve(root string, rt Runtime, version string, log *slog.Logger) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("monitor: become subreaper: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(root, "monitor.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("monitor: lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("monitor: another monitor serves %s", root)
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("monitor: epoll: %w", err)
	}
	s := &Server{
		root: root, rt: rt, log: log, version: version, epfd: epfd,
		stop:        make(chan struct{}),
		watches:     map[int32]*watch{},
		containers:  map[string]*container{},
		subscribers: map[chan Exit]struct{}{},
	}
	sock := filepath.Join(root, SocketName)
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("monitor: listen: %w", err)
	}
	_ = os.Chmod(sock, 0o600)
	s.ln = ln
	go s.loop()
	log.Info("monitor serving", "root", root, "pid", os.Getpid())
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.Warn("monitor: accept", "err", err)
			continue
		}
		go s.handle(conn)
	}
}

func (s *Server) handle(conn *net.UnixConn) {
	defer conn.Close()
	var req Request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		return
	}
	reply := func(r Response) { _ = json.NewEncoder(conn).Encode(r) }
	fail := func(err error) { reply(Response{Error: err.Error()}) }
	switch req.Op {
	case "ping":
		reply(Response{MonitorPid: os.Getpid(), Version: s.version})
	case "create":
		pid, err := s.create(req)
		if err != nil {
			fail(err)
			return
		}
		reply(Response{Pid: pid})
	case "start":
		if err := s.rt.Start(context.Background(), req.ID); err != nil {
			fail(fmt.Errorf("start %s: %w", req.ID, err))
			return
		}
		reply(Response{})
	case "list":
		reply(Response{Containers: s.list()})
	case "subscribe":
		s.subscribe(conn)
	case "shutdown":
		s.mu.Lock()
		busy := len(s.containers)
		s.mu.Unlock()
		if req.IfIdle && busy > 0 {
			fail(fmt.Errorf("monitor: %d containers still run", busy))
			return
		}
		reply(Response{})
		close(s.stop)
		s.ln.Close()
		_ = os.Remove(filepath.Join(s.root, SocketName))
	default:
		fail(fmt.Errorf("monitor: unknown request %q", req.Op))
	}
}

func (s *Server) list() []Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Container, 0, len(s.containers))
	for _, c := range s.containers {
		if c.exit == nil {
			out = append(out, Container{ID: c.id, Pid: c.pid})
		}
	}
	return out
}

// subscribe streams exits to conn until the client goes away.
func (s *Server) subscribe(conn *net.UnixConn) {
	ch := make(chan Exit, 256)
	s.mu.Lock()
	s.subscribers[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subscribers, ch)
		s.mu.Unlock()
	}()
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = conn.Read(b[:])
		close(gone)
	}()
	enc := json.NewEncoder(conn)
	// An empty first line tells the client the subscription is live, so it
	// can read exit files knowing no later exit will be missed.
	if enc.Encode(Exit{}) != nil {
		return
	}
	for {
		select {
		case e := <-ch:
			if enc.Encode(e) != nil {
				return
			}
		case <-gone:
			return
		case <-s.stop:
			return
		}
	}
}

// create makes the container's pipes, has the runtime create it, and starts
// watching its output and its first process.
func (s *Server) create(req Request) (int, error) {
	if req.ID == "" || req.Bundle == "" || req.Log.Path == "" || req.ExitFile == "" {
		return 0, errors.New("create: id, bundle, log path and exit file are required")
	}
	s.mu.Lock()
	if c, ok := s.containers[req.ID]; ok && !c.recorded {
		s.mu.Unlock()
		return 0, fmt.Errorf("create %s: already running as pid %d", req.ID, c.pid)
	}
	s.mu.Unlock()
	if req.Terminal {
		return 0, fmt.Errorf("create %s: terminal containers are not supported by the monitor yet", req.ID)
	}
	_ = os.Remove(req.ExitFile)

	w, err := logs.OpenWriter(req.Log.Path, logs.Options{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles})
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", req.ID, err)
	}
	var toClose []*os.File // the container's ends, ours to close once it has them
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		w.Close()
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		w.Close()
		outR.Close()
		outW.Close()
		return 0, err
	}
	toClose = append(toClose, outW, errW)
	var stdin, stdinW *os.File
	if req.Stdin {
		r, wr, err := os.Pipe()
		if err != nil {
			w.Close()
			outR.Close()
			errR.Close()
			closeAll()
			return 0, err
		}
		stdin, stdinW = r, wr
	} else if stdin, err = os.Open(os.DevNull); err != nil {
		w.Close()
		outR.Close()
		errR.Close()
		closeAll()
		return 0, err
	}
	toClose = append(toClose, stdin)

	pid, err := s.rt.Create(context.Background(), req.ID, req.Bundle, Stdio{Stdin: stdin, Stdout: outW, Stderr: errW})
	closeAll()
	if err != nil {
		w.Close()
		outR.Close()
		errR.Close()
		if stdinW != nil {
			stdinW.Close()
		}
		return 0, fmt.Errorf("create %s: %w", req.ID, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// Without a pidfd the exit would go unnoticed; refuse rather than lose it.
		w.Close()
		outR.Close()
		errR.Close()
		return 0, fmt.Errorf("create %s: pidfd_open(%d): %w", req.ID, pid, err)
	}
	c := &container{id: req.ID, pid: pid, pidfd: pidfd, exitFile: req.ExitFile, log: w, stdin: stdinW, open: 2}
	s.mu.Lock()
	s.containers[req.ID] = c
	s.mu.Unlock()
	for _, f := range []struct {
		file   *os.File
		stream string
	}{{outR, "stdout"}, {errR, "stderr"}} {
		fd, err := detachFd(f.file)
		if err != nil {
			return 0, fmt.Errorf("create %s: %w", req.ID, err)
		}
		s.add(&watch{c: c, fd: fd, stream: f.stream})
	}
	s.add(&watch{c: c, fd: pidfd})
	return pid, nil
}

// detachFd takes the descriptor out of an *os.File (so the garbage
// collector never closes it behind the loop's back), non-blocking.
func detachFd(f *os.File) (int, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (s *Server) add(w *watch) {
	s.mu.Lock()
	s.watches[int32(w.fd)] = w
	s.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP | unix.EPOLLERR, Fd: int32(w.fd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, w.fd, &ev); err != nil {
		s.log.Error("monitor: epoll add", "container", w.c.id, "err", err)
	}
}

func (s *Server) remove(w *watch) {
	_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, w.fd, nil)
	s.mu.Lock()
	delete(s.watches, int32(w.fd))
	s.mu.Unlock()
	unix.Close(w.fd)
}

// record writes the exit file and tells subscribers, once the output is
// drained or drainTimeout has passed since the exit.
func (s *Server) record(c *container) {
	s.mu.Lock()
	if c.recorded || c.exit == nil {
		s.mu.Unlock()
		return
	}
	c.recorded = true
	exit := *c.exit
	s.mu.Unlock()

	if err := atomicfile.WriteJSON(c.exitFile, exit, 0o600); err != nil {
		s.log.Error("monitor: record exit", "container", c.id, "err", err)
	}
	s.mu.Lock()
	for ch := range s.subscribers {
		select {
		case ch <- exit:
		default: // a stuck subscriber re-reads exit files when it catches up
		}
	}
	s.release(c)
	s.mu.Unlock()
}

// release forgets a container once its exit is recorded and its output is
// closed. s.mu is held.
func (s *Server) release(c *container) {
	if !c.recorded || c.open > 0 {
		return
	}
	c.log.Close()
	if c.stdin != nil {
		c.stdin.Close()
	}
	if cur, ok := s.containers[c.id]; ok && cur == c {
		delete(s.containers, c.id)
	}
}
