// Command berth runs Compose projects on its own container engine.
//
// One binary plays every role: the CLI, `berth daemon`, and hidden entry
// points that berth re-executes itself into (a container's setup stage, the
// monitor). main recognises those before it builds the CLI, so a container
// start pays for no flag parsing and no command tree.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if entry, ok := hiddenEntryPoints[firstArg()]; ok {
		entry()
		return
	}
	err := newRootCommand().Execute()
	if err == nil {
		return
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.err != nil {
			fmt.Fprintln(os.Stderr, "berth:", exit.err)
		}
		os.Exit(exit.code)
	}
	fmt.Fprintln(os.Stderr, "berth:", err)
	os.Exit(1)
}

func firstArg() string {
	if len(os.Args) > 1 {
		return os.Args[1]
	}
	return ""
}

// exitError ends berth with a given status, as `exec` and `run` pass on the
// status of the process they ran; err, when set, is printed first.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }
