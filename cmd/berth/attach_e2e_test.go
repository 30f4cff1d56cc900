package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer = testutil.SyncBuffer

func (p *project) start(args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	p.t.Helper()
	cmd := exec.Command(testutil.BerthBinary(p.t), append([]string{"--root", p.root}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "BERTH_HOST=")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

// signalAndWait sends sig to cmd, which must then end with 0 within 20 s.
func signalAndWait(t *testing.T, cmd *exec.Cmd, sig os.Signal, stderr *syncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s ended with %v after %v\n%s", strings.Join(cmd.Args, " "), err, sig, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not end after %v\n%s", strings.Join(cmd.Args, " "), sig, stderr.String())
	}
}

func TestAttachedUpPrintsLogsAndStopsOnCtrlC(t *testing.T) {
	p := newProject(t, "attach", "attach")
	p.importBusybox()
	cmd, stdout, stderr := p.start("up")
	testutil.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(stdout.String(), "talker-1  | line 3") {
			return fmt.Errorf("no prefixed log line yet:\n%s", stdout.String())
		}
		return nil
	})
	signalAndWait(t, cmd, syscall.SIGINT, stderr)
	if !strings.Contains(stderr.String(), "Gracefully stopping...") {
		t.Errorf("no graceful-stop notice:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "talker-1  | bye") {
		t.Errorf("the stop signal's output was not shown:\n%s", stdout.String())
	}
	if st := p.stateOf("talker"); st != "exited" {
		t.Fatalf("after Ctrl-C, talker is %s", st)
	}
}

// TestUpAbortOnContainerFailure: a container that exits with 0 does not
// stop the project; the first that fails does, and up exits with its code.
// With --abort-on-container-exit, the first exit stops it, and up exits
// with that container's code (as docker compose does).
func TestUpAbortOnContainerFailure(t *testing.T) {
	p := newProject(t, "attach", "abortfail")
	p.importBusybox()
	out, stderr, err := p.berthErr("--profile", "fail", "up", "--abort-on-container-failure")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("up --abort-on-container-failure: %v, want exit status 4\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "ok-1 exited with code 0") || !strings.Contains(out, "| failing") {
		t.Fatalf("the output does not show ok's exit before bad's failure:\n%s\nstderr:\n%s", out, stderr)
	}
	if st := p.stateOf("talker"); st != "exited" {
		t.Fatalf("after bad failed, talker is %s (abort should stop it)", st)
	}
	p.berth("--profile", "fail", "down", "-t", "1")
	_, stderr, err = p.berthErr("--profile", "job", "up", "--abort-on-container-exit")
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("up --abort-on-container-exit: %v, want job's exit status 3\n%s", err, stderr)
	}
	if _, stderr, err := p.berthErr("up", "--abort-on-container-exit", "--abort-on-container-failure"); err == nil || !strings.Contains(stderr, "cannot be combined") {
		t.Fatalf("both abort flags: %v\n%s", err, stderr)
	}
}

func TestUpExitCodeFrom(t *testing.T) {
	p := newProject(t, "attach", "exitcode")
	p.importBusybox()
	_, stderr, err := p.berthErr("--profile", "job", "up", "--exit-code-from", "job")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("up --exit-code-from job: %v, want exit status 3\n%s", err, stderr)
	}
	if st := p.stateOf("talker"); st != "exited" {
		t.Fatalf("after the job ended, talker is %s (abort should stop it)", st)
	}
}

// TestComposeAttachFollowsOneReplica: attach --index picks a replica; its
// output comes until the container ends; the signal the command gets goes
// to that container (sig-proxy), which ends it and the command with 0.
func TestComposeAttachFollowsOneReplica(t *testing.T) {
	p := newProject(t, "attach", "attachsvc")
	p.importBusybox()
	p.berth("up", "-d", "--scale", "talker=2")
	// logs --index: one replica's lines only.
	testutil.Eventually(t, 10*time.Second, func() error {
		out := p.berth("logs", "--index", "2", "talker")
		if !strings.Contains(out, "talker-2  | line") || strings.Contains(out, "talker-1") {
			return fmt.Errorf("logs --index 2 talker:\n%s", out)
		}
		return nil
	})
	// ps --orphans=false: against a file without talker, its replicas are
	// orphans of the project.
	if err := os.WriteFile(filepath.Join(p.dir, "other.yaml"), []byte("services:\n  solo:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := len(p.ps()); n != 2 {
		t.Fatalf("ps: %d containers, want the two talkers", n)
	}
	if out := strings.TrimSpace(p.berth("-f", "other.yaml", "-p", p.name, "ps", "-q", "--orphans=false")); out != "" {
		t.Fatalf("ps --orphans=false against other.yaml lists %q", out)
	}
	if out := strings.Fields(p.berth("-f", "other.yaml", "-p", p.name, "ps", "-q")); len(out) != 2 {
		t.Fatalf("ps against other.yaml lists %q, want the two orphans", out)
	}
	cmd, stdout, stderr := p.start("attach", "--index", "2", "talker")
	testutil.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(stdout.String(), "line ") {
			return fmt.Errorf("no output attached yet:\n%s%s", stdout.String(), stderr.String())
		}
		return nil
	})
	signalAndWait(t, cmd, syscall.SIGTERM, stderr)
	if !strings.Contains(stdout.String(), "bye") {
		t.Errorf("the container's answer to the signal was not shown:\n%s", stdout.String())
	}
	states := map[string]string{}
	for _, e := range p.ps("-a") {
		states[e.Name] = e.State
	}
	if states["attachsvc-talker-2"] != "exited" || states["attachsvc-talker-1"] != "running" {
		t.Fatalf("after the signal: %v, want talker-2 exited and talker-1 running", states)
	}
	if _, stderr, err := p.berthErr("attach", "--index", "2", "talker"); err == nil || !strings.Contains(stderr, "not running") {
		t.Fatalf("attach to the exited replica: %v\n%s", err, stderr)
	}
	if _, stderr, err := p.berthErr("attach", "nosuch"); err == nil || !strings.Contains(stderr, "no such service") {
		t.Fatalf("attach nosuch: %v\n%s", err, stderr)
	}
}
