package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/rootid"
)

// open returns the runtime of the state root: ROOT/runtime, cgroups named
// after ROOT, warnings to stderr.
func (g Globals) open(stderr io.Writer) (*runtime.Runtime, error) {
	root, err := filepath.Abs(g.Root)
	if err != nil {
		return nil, err
	}
	return runtime.New(runtime.Config{
		StateDir:     filepath.Join(root, "runtime"),
		CgroupParent: rootid.CgroupParent(root),
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// with runs fn with the state root's runtime.
func (g Globals) with(ctx context.Context, stderr io.Writer, fn func(*runtime.Runtime) error) error {
	rt, err := g.open(stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	return fn(rt)
}

func specCommand() *Command {
	var bundle string
	var o runtime.SpecOptions
	return &Command{
		Name: "spec", Use: "spec [flags] [-- COMMAND [ARG...]]", MaxArgs: -1, Interspersed: true,
		Short: "Write a default config.json (Docker's defaults) into a bundle",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVarP(&bundle, "bundle", "b", ".", "Bundle directory")
			fs.StringVar(&o.Rootfs, "rootfs", "rootfs", "Root filesystem, relative to the bundle")
			fs.StringVar(&o.Hostname, "hostname", "", "Hostname")
			fs.BoolVarP(&o.Terminal, "tty", "t", false, "Give the process a terminal")
			fs.BoolVar(&o.ReadonlyRootfs, "read-only", false, "Mount the root filesystem read-only")
			fs.BoolVar(&o.Unconfined, "unconfined", false, "No seccomp profile")
			fs.BoolVar(&o.CgroupNamespace, "cgroupns", false, "Give the container its own cgroup namespace")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			o.Args = args
			spec, err := runtime.DefaultSpec(o)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(bundle, "config.json")); err == nil {
				return fmt.Errorf("%s already exists", filepath.Join(bundle, "config.json"))
			}
			return runtime.WriteSpec(bundle, spec)
		},
	}
}

// createFlags are the flags create and run share.
type createFlags struct {
	bundle        string
	consoleSocket string
	pidFile       string
	preserveFds   int
}

func (cf *createFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&cf.bundle, "bundle", "b", ".", "Bundle directory")
	fs.StringVar(&cf.consoleSocket, "console-socket", "", "Unix socket that receives the pty master of a terminal process")
	fs.StringVar(&cf.pidFile, "pid-file", "", "Write the container process's pid to this file")
	fs.IntVar(&cf.preserveFds, "preserve-fds", 0, "Pass this many more descriptors (from 3) to the process")
}

func (cf *createFlags) io() runtime.IO {
	io := runtime.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ConsoleSocket: cf.consoleSocket}
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

func createCommand() *Command {
	var cf createFlags
	return &Command{
		Name: "create", Use: "create [flags] CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "Create a container from a bundle; it waits for start",
		Flags: cf.register,
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
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
}

func startCommand() *Command {
	return &Command{
		Name: "start", Use: "start CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "Start a created container",
		Flags: func(*pflag.FlagSet) {},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error { return rt.Start(ctx, args[0]) })
		},
	}
}

// State is what `state` prints: the OCI state, as runc prints it.
type State struct {
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

func toState(s runtime.State) State {
	return State{
		OCIVersion: specs.Version, ID: s.ID, Pid: s.Pid, Status: string(s.Status), Bundle: s.Bundle,
		Rootfs: s.Rootfs, Created: s.Created, OOMKilled: s.OOMKilled, Annotations: s.Annotations,
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stateCommand() *Command {
	return &Command{
		Name: "state", Use: "state CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "Print the state of a container",
		Flags: func(*pflag.FlagSet) {},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				st, err := rt.State(ctx, args[0])
				if err != nil {
					return err
				}
				return printJSON(stdout, toState(st))
			})
		},
	}
}

func listCommand() *Command {
	var format string
	return &Command{
		Name: "list", Use: "list", Aliases: []string{"ls"}, MaxArgs: 0, Interspersed: true,
		Short: "List containers",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&format, "format", "table", "Output format: table or json")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				list, err := rt.List(ctx)
				if err != nil {
					return err
				}
				if format == "json" {
					out := make([]State, 0, len(list))
					for _, s := range list {
						out = append(out, toState(s))
					}
					return printJSON(stdout, out)
				}
				tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
}

// ParseSignal reads a signal as a number, KILL or SIGKILL.
func ParseSignal(s string) (syscall.Signal, error) {
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

func killCommand() *Command {
	var all bool
	return &Command{
		Name: "kill", Use: "kill [flags] CONTAINER [SIGNAL]", MinArgs: 1, MaxArgs: 2, Interspersed: true,
		Short: "Send a signal (default SIGTERM) to a container's process",
		Flags: func(fs *pflag.FlagSet) {
			fs.BoolVarP(&all, "all", "a", false, "Signal every process of the container")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = ParseSignal(args[1]); err != nil {
					return err
				}
			}
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error { return rt.Kill(ctx, args[0], sig, all) })
		},
	}
}

func deleteCommand() *Command {
	var force bool
	return &Command{
		Name: "delete", Use: "delete [flags] CONTAINER", Aliases: []string{"rm"}, MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "Delete a container",
		Flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&force, "force", false, "Kill a running container first")
		},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				// Like runc: deleting what does not exist is an error, unless forced.
				if _, err := rt.State(ctx, args[0]); err != nil && !force {
					return err
				}
				return rt.Delete(ctx, args[0], runtime.DeleteOptions{Force: force})
			})
		},
	}
}

func pauseCommand(pause bool) *Command {
	name, short := "resume", "Resume a paused container"
	if pause {
		name, short = "pause", "Freeze every process of a container"
	}
	return &Command{
		Name: name, Use: name + " CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true, Short: short,
		Flags: func(*pflag.FlagSet) {},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				if pause {
					return rt.Pause(ctx, args[0])
				}
				return rt.Resume(ctx, args[0])
			})
		},
	}
}

func psCommand() *Command {
	return &Command{
		Name: "ps", Use: "ps CONTAINER", MinArgs: 1, MaxArgs: 1, Interspersed: true,
		Short: "List the host pids of a container's processes",
		Flags: func(*pflag.FlagSet) {},
		Run: func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error {
			return g.with(ctx, stderr, func(rt *runtime.Runtime) error {
				pids, err := rt.Pids(ctx, args[0])
				if err != nil {
					return err
				}
				for _, p := range pids {
					fmt.Fprintln(stdout, p)
				}
				return nil
			})
		},
	}
}
