package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/internal/testutil"
)

func (p *project) writeCompose(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *project) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (p *project) lastWatchEvent(t *testing.T) string {
	t.Helper()
	var list []daemon.WatchInfo
	if err := json.Unmarshal([]byte(p.berth("watch", "ls", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, w := range list {
		if w.Project == "watched" && w.LastEvent != nil {
			return w.LastEvent.Kind + ": " + w.LastEvent.Text
		}
	}
	return ""
}

// services maps each running service to its container id.
func (p *project) services() map[string]string {
	out := map[string]string{}
	for _, e := range p.ps() {
		out[e.Service] = e.ID
	}
	return out
}

func TestWatchConvergesEditsGitAndDrift(t *testing.T) {
	testutil.RequireCommand(t, "git")
	p := newProject(t, "watch", "watched")
	p.importBusybox()
	p.git(t, "init", "-q", "-b", "main")
	p.git(t, "add", ".")
	p.git(t, "commit", "-q", "-m", "blue")
	first := p.git(t, "rev-parse", "HEAD")

	p.berth("watch", "-d", "--resync", "1s")
	t.Cleanup(func() { _, _, _ = p.berthErr("watch", "stop", "watched") })
	var start map[string]string
	testutil.Eventually(t, 20*time.Second, func() error {
		start = p.services()
		if len(start) != 2 {
			return fmt.Errorf("running: %v", start)
		}
		return nil
	})

	// An edit of one service's environment recreates that service only.
	compose, _ := os.ReadFile(filepath.Join(p.dir, "compose.yaml"))
	green := strings.Replace(string(compose), "COLOR: blue", "COLOR: green", 1)
	p.writeCompose(t, green)
	testutil.Eventually(t, 20*time.Second, func() error {
		now := p.services()
		if now["api"] == start["api"] || now["api"] == "" {
			return fmt.Errorf("api not recreated yet: %v", now)
		}
		if now["cache"] != start["cache"] {
			return fmt.Errorf("cache was recreated too")
		}
		return nil
	})

	// A broken edit changes nothing and is reported.
	before := p.services()
	p.writeCompose(t, green+"\n  broken: [\n")
	testutil.Eventually(t, 20*time.Second, func() error {
		if ev := p.lastWatchEvent(t); !strings.HasPrefix(ev, "error: files not applied") {
			return fmt.Errorf("last event %q", ev)
		}
		return nil
	})
	if now := p.services(); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("a broken file changed what runs: %v -> %v", before, now)
	}

	// A service added and one removed.
	p.writeCompose(t, strings.Replace(green, "  cache:", "  queue:", 1))
	testutil.Eventually(t, 20*time.Second, func() error {
		now := p.services()
		if now["queue"] == "" || now["cache"] != "" || now["api"] != before["api"] {
			return fmt.Errorf("running: %v", now)
		}
		return nil
	})

	// A git checkout of the first commit converges back to it.
	p.git(t, "checkout", "-q", "-f", first)
	testutil.Eventually(t, 20*time.Second, func() error {
		now := p.services()
		if now["cache"] == "" || now["queue"] != "" || now["api"] == before["api"] {
			return fmt.Errorf("running: %v", now)
		}
		return nil
	})

	// A container removed by hand comes back.
	gone := p.services()["cache"]
	p.berth("rm", "-f", "-s", "cache")
	testutil.Eventually(t, 20*time.Second, func() error {
		if now := p.services()["cache"]; now == "" || now == gone {
			return fmt.Errorf("cache not back: %q", now)
		}
		return nil
	})

	// The watch survives a daemon restart.
	stopDaemon(t, p.root)
	p.berth("watch", "ls") // starts the daemon again
	testutil.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(p.berth("watch", "ls"), "watched") {
			return fmt.Errorf("watch not resumed")
		}
		return nil
	})
	p.writeCompose(t, green)
	testutil.Eventually(t, 20*time.Second, func() error {
		if ev := p.lastWatchEvent(t); !strings.HasPrefix(ev, "applied") && !strings.HasPrefix(ev, "converged") {
			return fmt.Errorf("last event %q", ev)
		}
		if now := p.services(); now["api"] == "" {
			return fmt.Errorf("api not running")
		}
		return nil
	})

	// down ends the watch: nothing comes back after three resync periods.
	if _, stderr, err := p.berthErr("down", "-t", "1"); err != nil || !strings.Contains(stderr, "Watch watched") {
		t.Errorf("down: %v, and it should report the watch it stopped:\n%s", err, stderr)
	}
	if ls := p.berth("watch", "ls"); strings.Contains(ls, "watched") {
		t.Fatalf("the watch outlived down:\n%s", ls)
	}
	time.Sleep(3 * time.Second)
	if now := p.services(); len(now) != 0 {
		t.Fatalf("after down the watch put back %v", now)
	}
}
