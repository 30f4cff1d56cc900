package daemon

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

// Connect returns a client for the daemon serving root at host, starting
// one from binary (`binary daemon --root ROOT --host HOST`) when the socket
// does not answer. A lock next to the socket makes sure two callers at once
// start one daemon: the second waits for the first.
func Connect(ctx context.Context, root, host, binary string) (*api.Client, error) {
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
	if c.Ping(ctx) == nil { // another caller started it while we waited
		return c, nil
	}
	if err := start(ctx, c, root, host, binary); err != nil {
		return nil, err
	}
	return c, nil
}

// start runs `berth daemon` detached from the caller (its own session, its
// log in ROOT/daemon.log) and waits until it answers.
func start(ctx context.Context, c *api.Client, root, host, binary string) error {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("state root: %w", err)
	}
	logPath := filepath.Join(root, "daemon.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary, "daemon", "--root", root, "--host", host)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
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

// HostFor is the daemon address for a root: host when given, the default
// socket for the default root, else ROOT/berth.sock, so that a command with
// its own root never talks to another root's daemon.
func HostFor(root, host string) string {
	if host != "" && (host != DefaultHost || root == DefaultRoot) {
		return host
	}
	if root == DefaultRoot || root == "" {
		return DefaultHost
	}
	return "unix://" + filepath.Join(root, "berth.sock")
}

// Defaults of a daemon's state root and socket.
const (
	DefaultRoot = "/var/lib/berth"
	DefaultHost = "unix:///run/berth/berth.sock"
)
