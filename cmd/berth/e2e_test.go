package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// project is a copy of a testdata project in a directory of its own (its
// name is the project name) with a berth state root for it.
type project struct {
	t    *testing.T
	name string
	dir  string
	root string
}

func newProject(t *testing.T, testdata, name string) *project {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "e2e", testdata))); err != nil {
		t.Fatal(err)
	}
	p := &project{t: t, name: name, dir: dir, root: root}
	t.Cleanup(func() {
		if t.Failed() {
			logDaemonTail(t, root)
		}
		// By name: the files may be broken when a test fails half-way.
		_, _, _ = p.berthErr("watch", "stop", name)
		_, _, _ = p.berthErr("-p", name, "down", "-v", "--remove-orphans", "-t", "1")
		stopDaemon(t, root)
	})
	return p
}

// logDaemonTail shows the end of the daemon's log of root, so that a test
// that failed (in CI, where nothing else is kept) says what the daemon saw.
func logDaemonTail(t *testing.T, root string) {
	b, err := os.ReadFile(filepath.Join(root, "daemon.log"))
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("the daemon's log, last %d of %d lines:\n%s", min(len(lines), 40), len(lines), strings.Join(lines[max(0, len(lines)-40):], "\n"))
}

// berth runs the CLI in the project directory and fails the test on error.
func (p *project) berth(args ...string) string {
	p.t.Helper()
	out, stderr, err := p.berthErr(args...)
	if err != nil {
		p.t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func (p *project) berthErr(args ...string) (string, string, error) {
	cmd := exec.Command(testutil.BerthBinary(p.t), append([]string{"--root", p.root}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "BERTH_HOST=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// importBusybox makes a busybox-static image called busybox in the root.
func (p *project) importBusybox() {
	p.t.Helper()
	layer, _ := imagetest.BusyboxLayer(p.t)
	tar := filepath.Join(p.t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tar, layer, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.berth("image", "import", "--change", "CMD [\"sh\"]", tar, "busybox:latest")
}

func (p *project) ps(args ...string) []psEntry {
	p.t.Helper()
	out := p.berth(append([]string{"-p", p.name, "ps", "--format", "json"}, args...)...)
	var entries []psEntry
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e psEntry
		if err := dec.Decode(&e); err != nil {
			p.t.Fatalf("ps --format json: %v\n%s", err, out)
		}
		entries = append(entries, e)
	}
	return entries
}

// TestThinSliceUpDNSDown guards the first promise: two busybox services
// come up, one reaches the other by its service name, and down leaves
// nothing behind (the state root's leak check).
func TestThinSliceUpDNSDown(t *testing.T) {
	p := newProject(t, "thin", "thin")
	p.importBusybox()
	p.berth("up", "-d")

	entries := p.ps()
	if len(entries) != 2 {
		t.Fatalf("ps: %d containers, want 2: %+v", len(entries), entries)
	}
	for _, e := range entries {
		if e.State != "running" || e.Project != "thin" || e.Name != "thin-"+e.Service+"-1" {
			t.Errorf("ps entry %s: state %s, project %s", e.Name, e.State, e.Project)
		}
	}
	testutil.Eventually(t, 15*time.Second, func() error {
		if out := p.berth("logs", "client"); !strings.Contains(out, "client-1  | hello from web") {
			return &logsError{out}
		}
		return nil
	})

	p.berth("up", "-d")
	if again := p.ps(); again[0].ID != entries[0].ID || again[1].ID != entries[1].ID {
		t.Fatalf("a second up replaced containers")
	}

	// httpd as pid 1 ignores SIGTERM (as under docker): a short grace.
	p.berth("down", "-t", "1")
	if left := p.ps("-a"); len(left) != 0 {
		t.Fatalf("after down, ps -a lists %d containers", len(left))
	}
}

type logsError struct{ out string }

func (e *logsError) Error() string { return "client has not reached web by name yet; logs:\n" + e.out }
