// Package failpoint lets a test make berth fail at a named point, so that it
// can prove what happens when a process dies half-way (STYLE.md: fault
// injection instead of mocks).
//
// A failpoint is armed by the environment variable BERTH_FAILPOINTS, a list
// of name=action pairs separated by ';':
//
//	BERTH_FAILPOINTS='runtime/after-pivot=panic;runtime/after-clone=kill'
//
// Actions:
//
//	error          Inject returns an error naming the failpoint
//	panic          Inject panics
//	kill           the process sends itself SIGKILL (no deferred cleanup runs);
//	               the init of a pid namespace, which cannot receive SIGKILL
//	               from inside it, exits at once with status 137 instead
//	exit(N)        the process exits with status N at once
//	sleep(D)       Inject sleeps for the time.Duration D, then returns nil
//
// The variable is read at each call and nothing is cached, so a re-executed
// berth inherits the failpoints of its parent, and code with no failpoint
// armed pays one getenv.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env is the environment variable that arms failpoints.
const Env = "BERTH_FAILPOINTS"

// Error is what Inject returns for the error action.
type Error struct{ Name string }

func (e *Error) Error() string { return "failpoint " + e.Name }

// Inject runs the action armed for name, if any.
func Inject(name string) error {
	spec := os.Getenv(Env)
	if spec == "" {
		return nil
	}
	action, ok := Lookup(spec, name)
	if !ok {
		return nil
	}
	return run(name, action)
}

// Lookup returns the action that spec (BERTH_FAILPOINTS's syntax) arms for name.
func Lookup(spec, name string) (string, bool) {
	for _, pair := range strings.Split(spec, ";") {
		n, action, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && n == name {
			return action, true
		}
	}
	return "", false
}

func run(name, action string) error {
	verb, arg := action, ""
	if i := strings.IndexByte(action, '('); i > 0 && strings.HasSuffix(action, ")") {
		verb, arg = action[:i], action[i+1:len(action)-1]
	}
	switch verb {
	case "error":
		return &Error{Name: name}
	case "panic":
		panic("failpoint " + name)
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		// Still here: pid 1 of a pid namespace ignores its own SIGKILL.
		// exit_group is as abrupt: no deferred function runs.
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 137, 0, 0)
	case "exit":
		code, err := strconv.Atoi(arg)
		if err != nil {
			code = 1
		}
		os.Exit(code)
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return fmt.Errorf("failpoint %s: bad sleep duration %q", name, arg)
		}
		time.Sleep(d)
		return nil
	}
	return fmt.Errorf("failpoint %s: unknown action %q", name, action)
}
