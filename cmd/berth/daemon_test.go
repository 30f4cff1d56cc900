package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// berthCLI runs the berth binary against root and returns its stdout.
func berthCLI(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testutil.BerthBinary(t), append([]string{"--root", root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &cliError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cliError struct {
	err    error
	stderr string
}

func (e *cliError) Error() string { return e.err.Error() + ": " + e.stderr }

// stopDaemon ends the daemon serving root, found through its lock file.
func stopDaemon(t *testing.T, root string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "daemon.lock"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := syscall.Kill(pid, 0); err == nil {
			return os.ErrExist
		}
		return nil
	})
}

func daemonPids(root string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) >= 3 && args[1] == "daemon" && strings.Contains(strings.Join(args, " "), root) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestVersionStartsDaemonOnDemandAndReportsBothSides(t *testing.T) {
	root := testutil.StateRoot(t)
	t.Cleanup(func() { stopDaemon(t, root) })

	out, err := berthCLI(t, root, "version", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep versionReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("version --format json: %v\n%s", err, out)
	}
	if rep.Client.Version == "" || rep.Server == nil || rep.Server.Version == "" {
		t.Fatalf("want client and server versions, got %s", out)
	}
	if rep.Server.Root != root {
		t.Fatalf("server serves root %q, want %q", rep.Server.Root, root)
	}
	if pids := daemonPids(root); len(pids) != 1 || pids[0] != rep.Server.Pid {
		t.Fatalf("daemon processes %v, want exactly the reported pid %d", pids, rep.Server.Pid)
	}
	info, err := os.Stat(filepath.Join(root, "berth.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o660 {
		t.Fatalf("socket mode %o, want 660", perm)
	}

	pretty, err := berthCLI(t, root, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pretty, "Client:") || !strings.Contains(pretty, "Server:") {
		t.Fatalf("version output lacks a side:\n%s", pretty)
	}
}

func TestConcurrentCLIsStartOneDaemon(t *testing.T) {
	root := testutil.StateRoot(t)
	t.Cleanup(func() { stopDaemon(t, root) })

	const n = 8
	var wg sync.WaitGroup
	pids := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := berthCLI(t, root, "version", "--format", "json")
			if err != nil {
				errs[i] = err
				return
			}
			var rep versionReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Server == nil {
				errs[i] = err
				return
			}
			pids[i] = rep.Server.Pid
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CLI %d: %v", i, err)
		}
		if pids[i] != pids[0] {
			t.Fatalf("CLIs talked to daemons %v: more than one", pids)
		}
	}
	if got := daemonPids(root); len(got) != 1 {
		t.Fatalf("%d daemon processes for one root: %v", len(got), got)
	}
}

func TestSecondDaemonOnOneRootIsRefused(t *testing.T) {
	root := testutil.StateRoot(t)
	t.Cleanup(func() { stopDaemon(t, root) })
	if _, err := berthCLI(t, root, "version"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.BerthBinary(t), "--root", root, "--host", "unix://"+filepath.Join(root, "other.sock"), "daemon")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another berth daemon") {
		t.Fatalf("second daemon: err=%v, output:\n%s", err, out)
	}
}

func TestUnbuiltCommandSaysSoAndFails(t *testing.T) {
	root := t.TempDir()
	dir := t.TempDir()
	compose := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(compose, []byte("services:\n  a:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := berthCLI(t, root, "-f", compose, "config", "--resolve-image-digests")
	if err == nil || !strings.Contains(err.Error(), "not implemented yet") {
		t.Fatalf("config --resolve-image-digests: want a not-implemented error, got %v", err)
	}
}

func TestDaemonStopsCleanlyOnSIGTERM(t *testing.T) {
	root := testutil.StateRoot(t)
	if _, err := berthCLI(t, root, "version"); err != nil {
		t.Fatal(err)
	}
	stopDaemon(t, root)
	if _, err := os.Stat(filepath.Join(root, "berth.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket still there after SIGTERM: %v", err)
	}
}
