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
