package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	ociruntime "github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/rootid"
)

// The runc-like surface of berth's OCI runtime: the same bundle, the same
// verbs, so it can be driven and compared like runc. State lives in
// ROOT/runtime; cgroups are named after ROOT.

func newRuntimeCommand(opts *globalOptions) *cobra.Command {
	return group("runtime", "Drive the OCI runtime on a bundle, as runc does",
		runtimeSpecCommand(),
		runtimeCreateCommand(opts),
		runtimeStartCommand(opts),
		runtimeStateCommand(opts),
		runtimeListCommand(opts),
		runtimeKillCommand(opts),
		runtimeDeleteCommand(opts),
		runtimeRunCommand(opts),
		runtimeExecCommand(opts),
		runtimePauseCommand(opts, true),
		runtimePauseCommand(opts, false),
		runtimePsCommand(opts),
	)
}

func openRuntime(opts *globalOptions) (*ociruntime.Runtime, error) {
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	return ociruntime.New(ociruntime.Config{
		StateDir:     filepath.Join(root, "runtime"),
		CgroupParent: rootid.CgroupParent(root),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// withRuntime runs fn with a runtime over the global root.
func withRuntime(opts *globalOptions, fn func(context.Context, *ociruntime.Runtime) error) error {
	rt, err := openRuntime(opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	return fn(context.Background(), rt)
}

func runtimeSpecCommand() *cobra.Command {
	var bundle string
	var o ociruntime.SpecOptions
	c := &cobra.Command{
		Use:   "spec [flags] [-- COMMAND [ARG...]]",
		Short: "Write a default config.json (Docker's defaults) into a bundle",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Args = args
			spec, err := ociruntime.DefaultSpec(o)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(bundle, "config.json")); err == nil {
				return fmt.Errorf("%s already exists", filepath.Join(bundle, "config.json"))
			}
			return ociruntime.WriteSpec(bundle, spec)
		},
	}
	f := c.Flags()
	f.StringVarP(&bundle, "bundle", "b", ".", "Bundle directory")
	f.StringVar(&o.Rootfs, "rootfs", "rootfs", "Root filesystem, relative to the bundle")
	f.StringVar(&o.Hostname, "hostname", "", "Hostname")
	f.BoolVarP(&o.Terminal, "tty", "t", false, "Give the process a terminal")
	f.BoolVar(&o.ReadonlyRootfs, "read-only", false, "Mount the root filesystem read-only")
	f.BoolVar(&o.Unconfined, "unconfined", false, "No seccomp profile")
	f.BoolVar(&o.CgroupNamespace, "cgroupns", false, "Give the container its own cgroup namespace")
	return c
}

// createFlags are the flags create and run share.
type createFlags struct {
	bundle        string
	consoleSocket string
	pidFile       string
	preserveFds   int
}

func (cf *createFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVarP(&cf.bundle, "bundle", "b", ".", "Bundle directory")
	f.StringVar(&cf.consoleSocket, "console-socket", "", "Unix socket that receives the pty master of a terminal process")
	f.StringVar(&cf.pidFile, "pid-file", "", "Write the container process's pid to this file")
	f.IntVar(&cf.preserveFds, "preserve-fds", 0, "Pass this many more descriptors (from 3) to the process")
}

func (cf *createFlags) io() ociruntime.IO {
	io := ociruntime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: cf.consoleSocket}
	for i := 0; i < cf.preserveFds; i++ {
		io.ExtraFiles = append(io.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	return io
}

func (cf *createFlags) writePid(pid int) error {
	if cf.pidFile == "" {
		return nil
	}
	return os.WriteFile(cf.pidFile, []byte(strconv.Itoa(pid)), 0o644)
}

func runtimeCreateCommand(opts *globalOptions) *cobra.Command {
	var cf createFlags
	c := &cobra.Command{
		Use:   "create [flags] CONTAINER",
		Short: "Create a container from a bundle; it waits for start",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				p, err := rt.Create(ctx, args[0], cf.bundle, cf.io())
				if err != nil {
					return err
				}
				if p.Console != nil {
					// Nobody to hand a terminal to once this command exits.
					p.Console.Close()
				}
				return cf.writePid(p.Pid)
			})
		},
	}
	cf.register(c)
	return c
}

func runtimeStartCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER",
		Short: "Start a created container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				return rt.Start(ctx, args[0])
			})
		},
	}
}

// runtimeState is what `state` prints: the OCI state, as runc prints it.
type runtimeState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	OOMKilled   bool              `json:"oomKilled,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func toRuntimeState(s ociruntime.State) runtimeState {
	return runtimeState{
		OCIVersion: specs.Version, ID: s.ID, Pid: s.Pid, Status: string(s.Status), Bundle: s.Bundle,
		Rootfs: s.Rootfs, Created: s.Created, OOMKilled: s.OOMKilled, Annotations: s.Annotations,
	}
}

func runtimeStateCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER",
		Short: "Print the state of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				st, err := rt.State(ctx, args[0])
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), toRuntimeState(st))
			})
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runtimeListCommand(opts *globalOptions) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				list, err := rt.List(ctx)
				if err != nil {
					return err
				}
				if format == "json" {
					out := make([]runtimeState, 0, len(list))
					for _, s := range list {
						out = append(out, toRuntimeState(s))
					}
					return printJSON(cmd.OutOrStdout(), out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "table", "Output format: table or json")
	return c
}

// parseSignal reads a signal as a number, KILL or SIGKILL.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func runtimeKillCommand(opts *globalOptions) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "kill [flags] CONTAINER [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to a container's process",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				return rt.Kill(ctx, args[0], sig, all)
			})
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Signal every process of the container")
	return c
}

func runtimeDeleteCommand(opts *globalOptions) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "delete [flags] CONTAINER",
		Short: "Delete a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				if _, err := rt.State(ctx, args[0]); err != nil && !force {
					return err
				}
				return rt.Delete(ctx, args[0], ociruntime.DeleteOptions{Force: force})
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Kill a running container first")
	return c
}

func runtimePauseCommand(opts *globalOptions, pause bool) *cobra.Command {
	use, short := "resume CONTAINER", "Resume a paused container"
	if pause {
		use, short = "pause CONTAINER", "Freeze every process of a container"
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				if pause {
					return rt.Pause(ctx, args[0])
				}
				return rt.Resume(ctx, args[0])
			})
		},
	}
}

func runtimePsCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ps CONTAINER",
		Short: "List the host pids of a container's processes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				pids, err := rt.Pids(ctx, args[0])
				if err != nil {
					return err
				}
				for _, p := range pids {
					fmt.Fprintln(cmd.OutOrStdout(), p)
				}
				return nil
			})
		},
	}
}

func runtimeRunCommand(opts *globalOptions) *cobra.Command {
	var cf createFlags
	var detach bool
	c := &cobra.Command{
		Use:   "run [flags] CONTAINER",
		Short: "Create and start a container, wait for it and delete it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				return runContainer(ctx, rt, args[0], &cf, detach)
			})
		},
	}
	cf.register(c)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "Leave the container running and exit")
	return c
}

// runContainer is `runtime run`: create, start, forward signals, wait,
// delete, and exit with the process's status.
func runContainer(ctx context.Context, rt *ociruntime.Runtime, id string, cf *createFlags, detach bool) error {
	// Signals arriving from here on go to the container, not to us.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	p, err := rt.Create(ctx, id, cf.bundle, cf.io())
	if err != nil {
		return err
	}
	cleanup := func() { _ = rt.Delete(ctx, id, ociruntime.DeleteOptions{Force: true}) }
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
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(p.Pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		done <- ws
	}()
	var ws unix.WaitStatus
wait:
	for {
		select {
		case ws = <-done:
			break wait
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue // ours, not the container's
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
	if err := rt.Delete(ctx, id, ociruntime.DeleteOptions{Force: true}); err != nil {
		return err
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code != 0 {
		return &exitError{code: code}
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

func runtimeExecCommand(opts *globalOptions) *cobra.Command {
	var env []string
	var cwd, user string
	var tty bool
	c := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a process in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRuntime(opts, func(ctx context.Context, rt *ociruntime.Runtime) error {
				proc := &specs.Process{Args: args[1:], Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...), Cwd: cwd, Terminal: tty}
				if user != "" {
					uid, gid, err := parseUser(user)
					if err != nil {
						return err
					}
					proc.User = specs.User{UID: uid, GID: gid}
				}
				p, err := rt.Exec(ctx, args[0], proc, ociruntime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
				if err != nil {
					return err
				}
				var restore func()
				if p.Console != nil {
					restore = proxyConsole(p.Console)
				}
				var ws unix.WaitStatus
				for {
					_, err := unix.Wait4(p.Pid, &ws, 0, nil)
					if !errors.Is(err, unix.EINTR) {
						break
					}
				}
				if restore != nil {
					restore()
				}
				code := ws.ExitStatus()
				if ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
				if code != 0 {
					return &exitError{code: code}
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.StringArrayVarP(&env, "env", "e", nil, "Set an environment variable (KEY=VALUE)")
	f.StringVar(&cwd, "cwd", "", "Working directory")
	f.StringVarP(&user, "user", "u", "", "UID[:GID] to run as")
	f.BoolVarP(&tty, "tty", "t", false, "Give the process a terminal")
	return c
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
