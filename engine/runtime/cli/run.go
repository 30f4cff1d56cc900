package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-dev/berth/engine/runtime"
)

func runCommand() *Command {
	var cf createFlags
	var detach bool
	return &Command{
		Name: "run", Use: "run [flags] CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "Create and start a container, wait for it and delete it",
		Flags: func(fs *pflag.FlagSet) {
			cf.register(fs)
			fs.BoolVarP(&detach, "detach", "d", false, "Leave the container running and exit")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				return runContainer(ctx, rt, args[0], &cf, detach)
			})
		},
	}
}

// runContainer is `runtime run`: create, start, forward signals, wait,
// delete, and exit with the process's status. This process is the
// container's parent: it reaps it.
func runContainer(ctx context.Context, rt *runtime.Runtime, id string, cf *createFlags, detach bool) error {
	// Signals arriving from here on go to the container, not to us. Only
	// those one sends a process by hand or a terminal sends: asking Go for
	// every signal costs a round trip to its signal thread for each of the
	// 65 (tens of milliseconds on a busy machine).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	p, err := rt.Create(ctx, id, cf.bundle, cf.io())
	if err != nil {
		return err
	}
	cleanup := func() { _ = rt.Delete(ctx, id, runtime.DeleteOptions{Force: true}) }
	if err := cf.writePid(p.Pid); err != nil {
		cleanup()
		return err
	}
	var restore func()
	if p.Console != nil {
		if detach {
			p.Console.Close()
		} else {
			restore = proxyConsole(p.Console)
		}
	}
	if err := rt.Start(ctx, id); err != nil {
		cleanup()
		return err
	}
	if detach {
		return nil
	}
	done := make(chan unix.WaitStatus, 1)
	go func() { done <- waitPid(p.Pid) }()
	var ws unix.WaitStatus
wait:
	for {
		select {
		case ws = <-done:
			break wait
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGWINCH:
				if p.Console != nil {
					resizeConsole(p.Console)
				}
				continue
			}
			_ = rt.Kill(ctx, id, sig, false)
		}
	}
	if restore != nil {
		restore()
	}
	if err := rt.Delete(ctx, id, runtime.DeleteOptions{Force: true}); err != nil {
		return err
	}
	return statusError(ws)
}

// forwarded are the signals `run` passes on to the container.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGWINCH,
}

// waitPid reaps one child. It waits on a pidfd through Go's poller, not
// in a blocking wait4: a thread blocked in a syscall makes the Go
// scheduler start and wake others, which a container start pays for in
// system time.
func waitPid(pid int) unix.WaitStatus {
	var ws unix.WaitStatus
	if fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK); err == nil {
		f := os.NewFile(uintptr(fd), "pidfd")
		defer f.Close()
		if rc, err := f.SyscallConn(); err == nil {
			done := false
			_ = rc.Read(func(uintptr) bool {
				wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				done = wpid == pid || (err != nil && !errors.Is(err, unix.EINTR))
				return done
			})
			if done {
				return ws
			}
		}
	}
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			return ws
		}
	}
}

// statusError passes a process's status on: its code, or 128+signal.
func statusError(ws unix.WaitStatus) error {
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// proxyConsole copies between our terminal and the container's pty, with
// ours in raw mode; the returned func puts it back.
func proxyConsole(master *os.File) func() {
	var state *term.State
	if term.IsTerminal(int(os.Stdin.Fd())) {
		state, _ = term.MakeRaw(int(os.Stdin.Fd()))
		resizeConsole(master)
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(os.Stdout, master); close(copied) }()
	return func() {
		// The pty reads EIO once its last slave is closed: output is drained.
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		if state != nil {
			_ = term.Restore(int(os.Stdin.Fd()), state)
		}
		master.Close()
	}
}

func resizeConsole(master *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

func execCommand() *Command {
	var env []string
	var cwd, user string
	var tty bool
	return &Command{
		Name: "exec", Use: "exec [flags] CONTAINER COMMAND [ARG...]", MinArgs: 2, MaxArgs: -1,
		Short: "Run a process in a running container",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVarP(&env, "env", "e", nil, "Set an environment variable (KEY=VALUE)")
			fs.StringVar(&cwd, "cwd", "", "Working directory")
			fs.StringVarP(&user, "user", "u", "", "UID[:GID] to run as")
			fs.BoolVarP(&tty, "tty", "t", false, "Give the process a terminal")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			proc := &specs.Process{
				Args: args[1:], Cwd: cwd, Terminal: tty,
				Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...),
			}
			if user != "" {
				uid, gid, err := parseUser(user)
				if err != nil {
					return err
				}
				proc.User = specs.User{UID: uid, GID: gid}
			}
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				p, err := rt.Exec(ctx, args[0], proc, runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
				if err != nil {
					return err
				}
				var restore func()
				if p.Console != nil {
					restore = proxyConsole(p.Console)
				}
				ws := waitPid(p.Pid)
				if restore != nil {
					restore()
				}
				return statusError(ws)
			})
		},
	}
}

func parseUser(s string) (uint32, uint32, error) {
	u, g, hasGroup := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: want numeric UID[:GID]", s)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--user %q: want numeric UID[:GID]", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}
