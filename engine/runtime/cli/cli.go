// Package cli is `berth runtime`: runc's verbs (spec, create, start, state,
// kill, delete, run, exec, pause, resume, ps, list) over engine/runtime, on
// a bundle directory, so the runtime can be driven and compared like runc.
//
// Unlike the library packages of the engine it prints and decides exit
// statuses: it is command-line code. cmd/berth builds its cobra commands
// from Commands (one definition of each verb's flags); FastPath runs the
// same commands from this package's init, before the rest of berth is
// initialised, because `berth runtime run` is a container start whose
// latency is measured against runc and crun, and berth's other packages
// cost milliseconds to initialise (a compiled JSON schema, regular
// expressions) that these commands never use.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Globals are the berth-wide flags the runtime commands use.
type Globals struct {
	// Root is berth's state root: containers live in ROOT/runtime, their
	// cgroups are named after ROOT.
	Root string
}

// DefaultRoot is berth's default state root (cmd/berth's --root), used
// when neither --root nor BERTH_ROOT says otherwise.
const DefaultRoot = "/var/lib/berth"

// Command is one verb of `berth runtime`.
type Command struct {
	Name    string
	Use     string // usage after "berth runtime", as cobra shows it
	Short   string
	Aliases []string
	MinArgs int
	MaxArgs int // -1: no limit
	// Interspersed is false for commands whose arguments after the first
	// are a command line of their own (exec).
	Interspersed bool
	// Flags registers the command's flags, bound to its options.
	Flags func(fs *pflag.FlagSet)
	// Run runs the command with its positional arguments.
	Run func(ctx context.Context, g Globals, args []string, stdout, stderr io.Writer) error
}

// ExitError ends the command with Code, as run and exec pass on their
// process's status; Err, when set, is printed first.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func (e *ExitError) Unwrap() error { return e.Err }

// Commands returns the verbs, each with its own fresh options.
func Commands() []*Command {
	return []*Command{
		specCommand(), createCommand(), startCommand(), stateCommand(), listCommand(),
		killCommand(), deleteCommand(), runCommand(), execCommand(),
		pauseCommand(true), pauseCommand(false), psCommand(),
	}
}

// FastPath runs `berth [global flags] runtime VERB ...` if args are
// exactly that, with flags it fully understands, and reports whether it
// did and with which status. Anything else (help, an unknown flag, a wrong
// number of arguments) is left to cobra, which says what is wrong.
func FastPath(args []string) (code int, handled bool) {
	g := Globals{Root: DefaultRoot}
	if v := os.Getenv("BERTH_ROOT"); v != "" {
		g.Root = v
	}
	i := 1
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		switch name {
		case "--root":
			if !hasVal {
				if i++; i >= len(args) {
					return 0, false
				}
				val = args[i]
			}
			g.Root = val
		case "-f", "--file", "-p", "--project-name", "--project-directory", "--profile",
			"--env-file", "-H", "--host", "--progress":
			// berth's other global flags mean nothing to the runtime.
			if !hasVal {
				i++
			}
		default:
			return 0, false
		}
	}
	if i+1 >= len(args) || args[i] != "runtime" {
		return 0, false
	}
	verb, rest := args[i+1], args[i+2:]
	for _, c := range Commands() {
		if c.Name != verb && !contains(c.Aliases, verb) {
			continue
		}
		fs := pflag.NewFlagSet(verb, pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.SetInterspersed(c.Interspersed)
		c.Flags(fs)
		if err := fs.Parse(rest); err != nil {
			return 0, false
		}
		n := fs.NArg()
		if n < c.MinArgs || (c.MaxArgs >= 0 && n > c.MaxArgs) {
			return 0, false
		}
		return Exit(c.Run(context.Background(), g, fs.Args(), os.Stdout, os.Stderr), os.Stderr), true
	}
	return 0, false
}

// Exit prints err as berth does and returns the exit status it stands for.
func Exit(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "berth:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "berth:", err)
	return 1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
