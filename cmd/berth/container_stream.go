package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-dev/berth/engine/api"
)

// streamSession connects this process's terminal (or pipes) to a
// taken-over attach or exec connection: input from stdin, output raw with
// a tty, demultiplexed to stdout and stderr without one. exec and run use
// it, and so may the compose commands.
type streamSession struct {
	stdin          io.Reader // nil: no input
	stdout, stderr io.Writer
	tty            bool
	// resize sets the remote pty's size; called at once and on SIGWINCH.
	resize func(rows, cols uint) error
	// detachKeys typed on stdin end the session with errDetached and
	// leave the process running; none when empty.
	detachKeys []byte
}

// errNotATTY is docker's error for -t with an input that is not a terminal.
var errNotATTY = errors.New("the input device is not a TTY")

// terminalSize is the size of the terminal on stdout (or stdin), if any.
func terminalSize() (rows, cols uint, ok bool) {
	for _, f := range []*os.File{os.Stdout, os.Stdin, os.Stderr} {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
			return uint(h), uint(w), true
		}
	}
	return 0, 0, false
}

// run copies until the remote output ends (the process ended) or ctx ends.
func (s streamSession) run(ctx context.Context, conn *api.HijackedConn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.tty {
		// Raw: every key (^C included) goes to the container's terminal.
		if f, ok := s.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			state, err := term.MakeRaw(int(f.Fd()))
			if err != nil {
				return fmt.Errorf("raw terminal: %w", err)
			}
			defer term.Restore(int(f.Fd()), state)
		}
		if s.resize != nil {
			if rows, cols, ok := terminalSize(); ok {
				_ = s.resize(rows, cols)
			}
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					if rows, cols, ok := terminalSize(); ok {
						_ = s.resize(rows, cols)
					}
				}
			}()
		}
	}
	detached := make(chan struct{})
	if s.stdin != nil {
		in := s.stdin
		if len(s.detachKeys) > 0 {
			in = &detachReader{r: in, keys: s.detachKeys}
		}
		go func() {
			if _, err := io.Copy(conn, in); errors.Is(err, errDetached) {
				// Leave at once, output and all: to the daemon this is a
				// client gone (which ends a StdinOnce container's input
				// when it has no terminal, as docker's does).
				close(detached)
				conn.Close()
				return
			}
			_ = conn.CloseWrite() // the process reads EOF
		}()
	}
	var err error
	if s.tty {
		_, err = io.Copy(s.stdout, conn)
	} else {
		err = api.Demux(conn, s.stdout, s.stderr)
	}
	select {
	case <-detached:
		return errDetached
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// proxySignals forwards the signals a user sends this process (^C in a
// terminal that is not raw, kill) to the container, as docker's
// --sig-proxy does, until the returned function is called.
func proxySignals(ctx context.Context, kill func(ctx context.Context, signal string) error) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				if n, ok := sig.(syscall.Signal); ok {
					_ = kill(ctx, fmt.Sprint(int(n)))
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
