package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/api"
)

// hostFor is the daemon address for opts: --host when given, else the
// default socket for the default root, else ROOT/berth.sock, so that a
// command with its own --root never talks to another root's daemon.
func hostFor(opts *globalOptions) string {
	if opts.Host != defaultHost || opts.Root == defaultRoot {
		return opts.Host
	}
	return "unix://" + filepath.Join(opts.Root, "berth.sock")
}

// connect returns a client for the daemon of opts, starting the daemon when
// its socket does not answer. A lock next to the socket makes sure two CLIs
// started at once start one daemon: the second waits for the first.
func connect(ctx context.Context, opts *globalOptions) (*api.Client, error) {
	host := hostFor(opts)
	c, err := api.NewClient(host)
	if err != nil {
		return nil, err
	}
	if c.Ping(ctx) == nil {
		return c, nil
	}
	socket, _ := api.SocketPath(host)
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	lock, err := os.OpenFile(socket+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon start lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("daemon start lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if c.Ping(ctx) == nil { // another CLI started it while we waited
		return c, nil
	}
	if err := startDaemon(ctx, c, opts.Root, host); err != nil {
		return nil, err
	}
	return c, nil
}

// startDaemon runs `berth daemon` detached from this CLI (its own session,
// its log in ROOT/daemon.log) and waits until it answers.
func startDaemon(ctx context.Context, c *api.Client, root, host string) error {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("state root: %w", err)
	}
	logPath := filepath.Join(root, "daemon.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "daemon", "--root", root, "--host", host)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(15 * time.Second)
	for delay := 2 * time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		if c.Ping(ctx) == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the berth daemon exited at start (%v): %s", err, tail(logPath, 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return errors.New("the berth daemon did not answer within 15s; see " + logPath)
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
