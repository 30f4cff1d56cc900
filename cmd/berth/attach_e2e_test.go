package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up ended with %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("up did not end after Ctrl-C\n%s", stderr.String())
	}
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
	cmd, stdout, stderr := p.start("attach", "--index", "2", "talker")
	testutil.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(stdout.String(), "line ") {
			return fmt.Errorf("no output attached yet:\n%s%s", stdout.String(), stderr.String())
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach ended with %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("attach did not end after SIGTERM\n%s", stderr.String())
	}
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
