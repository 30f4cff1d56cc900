package container

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitEntry is the first argument that makes berth the small init of a
// container with `init: true`: berth's binary is bind-mounted read-only at
// InitPath and runs as `berth-init __berth_container_init -- CMD...`,
// pid 1 of the container in front of the user's process.
const InitEntry = "__berth_container_init"

// InitMain is the body of the container init: it starts the command,
// forwards every signal it gets to it, reaps every process the container
// orphans (a shell's background jobs, a daemon's double fork), and exits
// with the command's status (128+signal when a signal ended it), as tini
// does.
func InitMain() {
	args := os.Args[2:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: no command given")
		os.Exit(2)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-init:", err)
		os.Exit(127)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-init: start", args[0]+":", err)
		os.Exit(126)
	}
	for {
		if status, done := reapAll(pid); done {
			os.Exit(status)
		}
		sig := (<-sigs).(syscall.Signal)
		switch sig {
		case unix.SIGCHLD:
		case unix.SIGURG:
			// The Go runtime's own preemption signal, not the user's.
		default:
			_ = syscall.Kill(pid, sig)
		}
	}
}

// reapAll reaps every ended child; done is set once the command itself
// ended, with its status.
func reapAll(pid int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || wpid <= 0 {
			return 0, false
		}
		if wpid != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
