package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
)

// savedState is what an upgrading monitor hands to its successor, by
// descriptor number: everything else is rebuilt.
type savedState struct {
	Listener   int              `json:"listener"`
	Lock       int              `json:"lock"`
	Reply      int              `json:"reply"` // the upgrade request's connection
	Containers []savedContainer `json:"containers"`
}

type savedContainer struct {
	ID       string       `json:"id"`
	Pid      int          `json:"pid"`
	Pidfd    int          `json:"pidfd"` // -1 once reaped
	Child    bool         `json:"child"`
	ExitFile string       `json:"exitFile"`
	Log      LogOptions   `json:"log"`
	Out      []savedWatch `json:"out,omitempty"` // open output streams
	Open     int          `json:"open"`
	Stdin    int          `json:"stdin"`
	Exit     *Exit        `json:"exit,omitempty"`
	Recorded bool         `json:"recorded,omitempty"`
}

type savedWatch struct {
	Fd      int    `json:"fd"`
	Stream  string `json:"stream"`
	Partial []byte `json:"partial,omitempty"`
}

// upgrade re-executes the monitor from binary, keeping its pid, children
// and descriptors. The successor answers on conn; on failure this process
// answers and carries on. It reports whether conn was handed over.
func (s *Server) upgrade(conn *net.UnixConn, binary string) bool {
	fail := func(err error) bool {
		_ = writeJSON(conn, Response{Error: "upgrade: " + err.Error()})
		return false
	}
	if binary == "" {
		return fail(errors.New("no binary given"))
	}
	if err := unix.Access(binary, unix.X_OK); err != nil {
		return fail(fmt.Errorf("%s: %w", binary, err))
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	// Prepared stages are a bet on the next creates, not state: the new
	// monitor would not know them as its children.
	s.discardPrepared("")
	resume := s.park()
	defer resume()
	s.mu.Lock()
	defer s.mu.Unlock()

	st := savedState{Listener: -1, Lock: int(s.lock.Fd()), Reply: -1}
	keep := []int{st.Lock}
	if err := rawFd(s.ln, func(fd int) { st.Listener = fd }); err != nil {
		return fail(err)
	}
	if err := rawFd(conn, func(fd int) { st.Reply = fd }); err != nil {
		return fail(err)
	}
	keep = append(keep, st.Listener, st.Reply)
	for _, c := range s.containers {
		sc := savedContainer{
			ID: c.id, Pid: c.pid, Pidfd: c.pidfd, Child: c.child, ExitFile: c.exitFile, Log: c.logOpts,
			Open: c.open, Stdin: c.stdin, Exit: c.exit, Recorded: c.recorded,
		}
		for _, w := range c.out {
			if !w.closed {
				sc.Out = append(sc.Out, savedWatch{Fd: w.fd, Stream: w.stream, Partial: w.partial})
				keep = append(keep, w.fd)
			}
		}
		if c.pidfd >= 0 {
			keep = append(keep, c.pidfd)
		}
		if c.stdin >= 0 {
			keep = append(keep, c.stdin)
		}
		st.Containers = append(st.Containers, sc)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	memfd, err := unix.MemfdCreate("berth-monitor-state", 0)
	if err != nil {
		return fail(fmt.Errorf("memfd: %w", err))
	}
	defer unix.Close(memfd)
	if _, err := unix.Write(memfd, b); err != nil {
		return fail(fmt.Errorf("memfd: %w", err))
	}
	if _, err := unix.Seek(memfd, 0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("memfd: %w", err))
	}
	for _, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			setCloexec(keep)
			return fail(fmt.Errorf("keep descriptor %d: %w", fd, err))
		}
	}
	env := []string{restoreEnv + "=" + strconv.Itoa(memfd)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, restoreEnv+"=") {
			env = append(env, kv)
		}
	}
	s.log.Info("monitor upgrading", "binary", binary, "containers", len(st.Containers))
	err = unix.Exec(binary, []string{binary, Entry, s.root}, env)
	// Still here: the exec failed, and this monitor carries on.
	setCloexec(keep)
	return fail(fmt.Errorf("exec %s: %w", binary, err))
}

// rawFd calls fn with the descriptor of a socket.
func rawFd(c interface {
	SyscallConn() (syscall.RawConn, error)
}, fn func(int)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

func setCloexec(fds []int) {
	for _, fd := range fds {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
}

// restore rebuilds the state an upgrading predecessor left in the memfd
// named by v, and returns the connection to answer the upgrade on.
func (s *Server) restore(v string) (*net.UnixConn, error) {
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("monitor restore: bad %s %q", restoreEnv, v)
	}
	f := os.NewFile(uintptr(fd), "monitor-state")
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("monitor restore: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("monitor restore: %w", err)
	}
	setCloexec([]int{st.Lock, st.Listener, st.Reply})
	s.lock = os.NewFile(uintptr(st.Lock), "monitor.lock")
	lf := os.NewFile(uintptr(st.Listener), "monitor.sock")
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("monitor restore: listener: %w", err)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		return nil, errors.New("monitor restore: listener is not a unix socket")
	}
	s.ln = ul
	var reply *net.UnixConn
	if st.Reply >= 0 {
		rf := os.NewFile(uintptr(st.Reply), "upgrade-reply")
		if rc, err := net.FileConn(rf); err == nil {
			reply, _ = rc.(*net.UnixConn)
		}
		rf.Close()
	}
	var pending []*container
	for _, sc := range st.Containers {
		keep := []int{sc.Pidfd, sc.Stdin}
		for _, w := range sc.Out {
			keep = append(keep, w.Fd)
		}
		setCloexec(keep)
		lw, err := logs.OpenWriter(sc.Log.Path, logs.Options{MaxSize: sc.Log.MaxSize, MaxFiles: sc.Log.MaxFiles})
		if err != nil {
			s.log.Error("monitor restore: log", "container", sc.ID, "err", err)
			continue
		}
		c := &container{
			id: sc.ID, pid: sc.Pid, pidfd: sc.Pidfd, child: sc.Child, exitFile: sc.ExitFile, logOpts: sc.Log,
			log: lw, stdin: sc.Stdin, open: sc.Open, exit: sc.Exit, recorded: sc.Recorded,
			// A recorded exit is in its file; the subscribers it was sent
			// to were the old process's.
			told: sc.Recorded,
		}
		for _, w := range sc.Out {
			c.out = append(c.out, &watch{c: c, fd: w.Fd, stream: w.Stream, partial: w.Partial})
		}
		s.containers[c.id] = c
		for _, w := range c.out {
			s.add(w)
		}
		if c.pidfd >= 0 {
			s.add(&watch{c: c, fd: c.pidfd})
		}
		if c.exit != nil && !c.recorded {
			pending = append(pending, c)
		}
	}
	for _, c := range pending {
		if c.open == 0 {
			s.record(c)
		} else {
			time.AfterFunc(drainTimeout, func() { s.record(c) })
		}
	}
	return reply, nil
}
