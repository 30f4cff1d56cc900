package monitor

import (
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
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/flock"
)

// Runtime is what the monitor needs of the OCI runtime: create a container
// whose first process is a child of this process, with the given stdio, and
// release it to run the user's process.
type Runtime interface {
	// Create returns the pid of the container's first process and, for a
	// container with a terminal, the pty master.
	Create(ctx context.Context, id, bundle string, stdio Stdio) (pid int, console *os.File, err error)
	// Start releases container id, whose first process is pid.
	Start(ctx context.Context, id string, pid int) error
	// Prepare starts the setup stage of container id, whose spec will list
	// namespaces, with the given stdio, ahead of its create; it fails for
	// namespaces that cannot be prepared.
	Prepare(id string, namespaces []specs.LinuxNamespace, stdio Stdio) (PreparedStage, error)
	// CreatePrepared is Create with the stdio and the stage that Prepare
	// was given and started; it takes the stage over.
	CreatePrepared(ctx context.Context, id, bundle string, stage PreparedStage) (pid int, console *os.File, err error)
	// PrepareSpare starts a setup stage for the next container prepared
	// (without a terminal and stdin), with the given stdio; Claim gives it
	// to that container.
	PrepareSpare(stdio Stdio) (PreparedStage, error)
}

// PreparedStage is a setup stage Prepare or PrepareSpare started.
type PreparedStage interface {
	// Claim makes a spare stage container id's prepared stage, whose spec
	// will list namespaces; on failure it stays a spare.
	Claim(id string, namespaces []specs.LinuxNamespace) error
	// Close ends a stage that will not be used.
	Close()
}

// Stdio is the container's standard streams, as the monitor made them;
// a terminal container gets none (its pty is its stdio).
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
	trim    func() // gives back start-up memory; nil in tests

	epfd   int
	wakefd int // an eventfd in the epoll set: wakes the loop to park it
	ln     *net.UnixListener
	lock   *os.File
	stop   chan struct{}
	closed sync.Once

	// ops orders requests that change containers (read side) against an
	// upgrade (write side), which must not exec half-way through a create.
	ops sync.RWMutex

	mu          sync.Mutex // guards the maps, parking and each container's fields below
	watches     map[int32]*watch
	containers  map[string]*container
	prepared    map[string]*prepared
	subscribers map[chan Exit]struct{}
	parking     *parkRequest
	// spare is a setup stage started for the next prepare; refilling is
	// set while one is being started, and refilled closes when it is done;
	// spareAwaited while a prepare waits for it; spareOff is set once the
	// monitor shuts down. refills are the starts in flight.
	spare        *prepared
	refilling    bool
	refilled     chan struct{}
	spareAwaited bool
	spareOff     bool
	// ending is set once the monitor agreed to shut down: it answers no
	// other request, so that a new daemon does not take it for one that
	// serves, and starts another (which waits for its lock).
	ending      atomic.Bool
	refills     sync.WaitGroup
	lastPrepare time.Time // when the last prepare came (see spareBurst)

	// staging is the loop's read buffer (see staging_linux.go); left is
	// what a killed monitor had read and not logged, written to its
	// container's log at the adopt.
	staging *staging
	left    *staged
}

type container struct {
	id       string
	pid      int
	pidfd    int
	child    bool // our child, so wait4 can read its status; false when adopted
	exitFile string
	logOpts  LogOptions
	log      *logs.Writer
	out      []*watch // stdout and stderr, or the pty
	stdin    int      // write end of the stdin pipe, or -1
	open     int      // output watches not yet at EOF
	exit     *Exit    // set once reaped
	recorded bool     // record has run or runs (once)
	told     bool     // the exit is in its file and was sent to subscribers
	// attachers get the raw output; paused is set while one of them lags
	// and the container's output is not read (back-pressure).
	attachers map[*attacher]struct{}
	paused    bool
}

type watch struct {
	c          *container
	fd         int
	stream     string // stdout, stderr, pty; "" for the pidfd
	partial    []byte // a line not yet ended; touched by the loop only
	registered bool   // in the epoll set
	closed     bool
}

// kind is the attach frame kind of the watch's output.
func (w *watch) kind() byte {
	if w.stream == StreamStderr {
		return FrameStderr
	}
	return FrameStdout
}

// logStream is the stream name the watch's lines carry in the log.
func (w *watch) logStream() string {
	if w.stream == StreamStderr {
		return "stderr"
	}
	return "stdout"
}

// Serve runs the monitor for root until a shutdown request. It is the body
// of the hidden entry point. An upgraded monitor (restoreEnv set) takes
// over its predecessor's state instead of starting empty.
func Serve(root string, rt Runtime, version string, log *slog.Logger) error {
	return ServeTrimmed(root, rt, version, log, nil)
}

// ServeTrimmed is Serve, calling trim once it serves (berth's monitor gives
// back the memory its start-up used; see container.TrimMemory).
func ServeTrimmed(root string, rt Runtime, version string, log *slog.Logger, trim func()) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("monitor: become subreaper: %w", err)
	}
	s := &Server{
		root: root, rt: rt, log: log, version: version, trim: trim,
		stop:        make(chan struct{}),
		watches:     map[int32]*watch{},
		containers:  map[string]*container{},
		prepared:    map[string]*prepared{},
		subscribers: map[chan Exit]struct{}{},
	}
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("monitor: epoll: %w", err)
	}
	if s.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("monitor: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.wakefd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, s.wakefd, &ev); err != nil {
		return fmt.Errorf("monitor: epoll: %w", err)
	}
	var reply *net.UnixConn
	if v := os.Getenv(restoreEnv); v != "" {
		os.Unsetenv(restoreEnv)
		if reply, err = s.restore(v); err != nil {
			return err
		}
	} else if err := s.listen(); err != nil {
		return err
	}
	defer s.lock.Close()
	if s.staging, s.left, err = openStaging(s.root); err != nil {
		s.log.Warn("monitor: staging buffer", "err", err)
		s.staging = plainStaging()
	}
	go s.loop()
	if s.trim != nil {
		s.trim()
	}
	log.Info("monitor serving", "root", root, "pid", os.Getpid(), "version", version, "containers", len(s.containers))
	if reply != nil {
		_ = writeJSON(reply, Response{MonitorPid: os.Getpid(), Version: version})
		reply.Close()
	}
	for {
		conn, err := s.ln.AcceptUnix()
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

// lockWait is how long a new monitor waits for the state root's lock.
const lockWait = 5 * time.Second

// listen takes the state root's monitor lock and opens the socket.
func (s *Server) listen() error {
	lock, err := os.OpenFile(filepath.Join(s.root, "monitor.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("monitor: lock: %w", err)
	}
	// A monitor that is shutting down holds the lock until it is gone:
	// wait for it a little.
	if err := flock.Exclusive(lock, lockWait); err != nil {
		lock.Close()
		if errors.Is(err, flock.ErrHeld) {
			return fmt.Errorf("monitor: another monitor serves %s", s.root)
		}
		return fmt.Errorf("monitor: lock: %w", err)
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = lock
	sock := filepath.Join(s.root, SocketName)
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("monitor: listen: %w", err)
	}
	_ = os.Chmod(sock, 0o600)
	s.ln = ln
	return nil
}

func (s *Server) handle(conn *net.UnixConn) {
	keep := false
	defer func() {
		if !keep {
			conn.Close()
		}
	}()
	var req Request
	fds, err := readJSON(conn, &req)
	if err != nil {
		return
	}
	reply := func(r Response, fds ...int) { _ = writeJSON(conn, r, fds...) }
	fail := func(err error) { reply(Response{Error: err.Error()}) }
	if s.ending.Load() {
		closeFds(fds)
		fail(errors.New("monitor: shutting down"))
		return
	}
	if req.Op != "adopt" {
		closeFds(fds)
	}
	switch req.Op {
	case "ping":
		reply(Response{MonitorPid: os.Getpid(), Version: s.version})
	case "create":
		s.ops.RLock()
		pid, names, sent, err := s.create(req)
		s.ops.RUnlock()
		if err != nil {
			fail(err)
			return
		}
		reply(Response{Pid: pid, Streams: names}, sent...)
		closeFds(sent)
	case "prepare":
		s.ops.RLock()
		s.prepare(req, func(err error) {
			if err != nil {
				fail(err)
				return
			}
			reply(Response{})
		})
		s.ops.RUnlock()
	case "discard":
		s.discardPrepared(req.ID)
		reply(Response{})
	case "start":
		s.ops.RLock()
		pid := 0
		s.mu.Lock()
		if c := s.containers[req.ID]; c != nil {
			pid = c.pid
		}
		s.mu.Unlock()
		err := s.rt.Start(context.Background(), req.ID, pid)
		s.ops.RUnlock()
		if err != nil {
			fail(fmt.Errorf("start %s: %w", req.ID, err))
			return
		}
		reply(Response{})
	case "adopt":
		s.ops.RLock()
		err := s.adopt(req, fds)
		s.ops.RUnlock()
		if err != nil {
			fail(err)
			return
		}
		reply(Response{})
	case "closestdin":
		s.mu.Lock()
		c := s.containers[req.ID]
		if c != nil && c.stdin >= 0 {
			unix.Close(c.stdin)
			c.stdin = -1
		}
		s.mu.Unlock()
		reply(Response{})
	case "list":
		reply(Response{Containers: s.list()})
	case "streams":
		s.streams(conn)
	case "subscribe":
		s.subscribe(conn)
	case "attach":
		keep = s.attach(conn, req.ID)
	case "upgrade":
		keep = s.upgrade(conn, req.Binary)
	case "shutdown":
		s.mu.Lock()
		busy := 0
		for _, c := range s.containers {
			if c.exit == nil {
				busy++
			}
		}
		s.mu.Unlock()
		if req.IfIdle && busy > 0 {
			fail(fmt.Errorf("monitor: %d containers still run", busy))
			return
		}
		reply(Response{})
		s.shutdown()
	default:
		fail(fmt.Errorf("monitor: unknown request %q", req.Op))
	}
}

func (s *Server) shutdown() {
	s.ending.Store(true)
	// Tests widen the window in which the monitor ends but still holds
	// its lock.
	_ = failpoint.Inject("monitor/shutdown")
	s.mu.Lock()
	s.spareOff = true
	s.mu.Unlock()
	s.refills.Wait()
	s.discardPrepared("")
	s.closed.Do(func() {
		close(s.stop)
		s.ln.Close()
		_ = os.Remove(filepath.Join(s.root, SocketName))
	})
}

// listed says whether c is listed (list, streams): it runs, or its exit
// is not yet in its file and sent to subscribers, which a client that
// subscribed first will receive.
func (c *container) listed() bool { return c.exit == nil || !c.told }

func (s *Server) list() []Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Container, 0, len(s.containers))
	for _, c := range s.containers {
		if c.listed() {
			out = append(out, Container{ID: c.id, Pid: c.pid, Adopted: !c.child, Paused: c.paused, Exiting: c.exit != nil})
		}
	}
	return out
}

// streams sends, one frame per running container, the descriptors of its
// stdio, so that a restarted daemon holds duplicates again.
func (s *Server) streams(conn *net.UnixConn) {
	type item struct {
		c     Container
		names []string
		fds   []int
	}
	var items []item
	s.mu.Lock()
	for _, c := range s.containers {
		if !c.listed() {
			continue
		}
		names, fds := c.stdio()
		// Dup under the lock: a closing watch must not close them under us.
		dups := make([]int, 0, len(fds))
		for _, fd := range fds {
			if d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
				dups = append(dups, d)
			} else {
				names = names[:len(dups)]
				break
			}
		}
		items = append(items, item{c: Container{ID: c.id, Pid: c.pid, Adopted: !c.child, Exiting: c.exit != nil}, names: names, fds: dups})
	}
	s.mu.Unlock()
	for i, it := range items {
		err := writeJSON(conn, Response{Containers: []Container{it.c}, Streams: it.names}, it.fds...)
		closeFds(it.fds)
		if err != nil {
			for _, rest := range items[i+1:] {
				closeFds(rest.fds)
			}
			return
		}
	}
	_ = writeJSON(conn, Response{Done: true})
}

// stdio lists the container's open stdio descriptors by name. s.mu is held.
func (c *container) stdio() (names []string, fds []int) {
	for _, w := range c.out {
		if !w.closed {
			names, fds = append(names, w.stream), append(fds, w.fd)
		}
	}
	if c.stdin >= 0 {
		names, fds = append(names, StreamStdin), append(fds, c.stdin)
	}
	return names, fds
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
	// An empty first frame tells the client the subscription is live, so
	// it can read exit files knowing no later exit will be missed.
	if writeJSON(conn, Exit{}) != nil {
		return
	}
	for {
		select {
		case e := <-ch:
			if writeJSON(conn, e) != nil {
				return
			}
		case <-gone:
			return
		case <-s.stop:
			return
		}
	}
}

func (s *Server) add(w *watch) {
	s.mu.Lock()
	s.watches[int32(w.fd)] = w
	s.register(w)
	s.mu.Unlock()
}

// register puts w in the epoll set. s.mu is held.
func (s *Server) register(w *watch) {
	if w.registered || w.closed {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP | unix.EPOLLERR, Fd: int32(w.fd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, w.fd, &ev); err != nil {
		s.log.Error("monitor: epoll add", "container", w.c.id, "err", err)
		return
	}
	w.registered = true
}

// unregister takes w out of the epoll set. s.mu is held.
func (s *Server) unregister(w *watch) {
	if !w.registered {
		return
	}
	_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, w.fd, nil)
	w.registered = false
}

// remove stops watching w and closes its descriptor.
func (s *Server) remove(w *watch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregister(w)
	delete(s.watches, int32(w.fd))
	if !w.closed {
		unix.Close(w.fd)
		w.closed = true
	}
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

	// Not synced: the loop must not wait on the disk, and only a power
	// cut (which ends every container anyway) loses page-cache data.
	if err := writeJSONVolatile(c.exitFile, exit); err != nil {
		s.log.Error("monitor: record exit", "container", c.id, "err", err)
	}
	s.mu.Lock()
	for ch := range s.subscribers {
		select {
		case ch <- exit:
		default: // a stuck subscriber re-reads exit files when it catches up
		}
	}
	c.told = true
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
	if c.stdin >= 0 {
		unix.Close(c.stdin)
		c.stdin = -1
	}
	if cur, ok := s.containers[c.id]; ok && cur == c {
		delete(s.containers, c.id)
	}
}

// writeJSONVolatile replaces path with v as JSON, atomically but without
// syncing (atomicfile.WriteVolatile).
func writeJSONVolatile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteVolatile(path, b, 0o600)
}
