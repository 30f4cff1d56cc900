package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// execOut is what a command prints in the service's container ("" when it fails).
func (p *project) execOut(service string, args ...string) string {
	out, _, err := p.berthErr(append([]string{"exec", "-T", service}, args...)...)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func TestDevelopWatchSyncExecAndRebuild(t *testing.T) {
	p := newProject(t, "develop", "develop")
	p.importBusybox()
	p.berth("up", "-d")
	p.berth("watch", "-d")
	write := func(rel, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(p.dir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eventually := func(what string, check func() bool) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, func() error {
			if !check() {
				return fmt.Errorf("%s: not yet", what)
			}
			return nil
		})
	}

	// initial_sync: the files that were there before the watch started are
	// copied in when it starts (but not the ignored ones).
	eventually("initial sync", func() bool { return p.execOut("app", "cat", "/srv/src/present.txt") == "before the watch" })
	if out := p.execOut("app", "cat", "/srv/src/old.tmp"); out != "" {
		t.Errorf("initial sync copied an ignored file: %q", out)
	}

	// sync: a new file in a new subdirectory appears; an ignored one does not.
	write("src/pkg/hello.txt", "hello\n")
	write("src/scratch.tmp", "ignored\n")
	eventually("sync of a new file", func() bool { return p.execOut("app", "cat", "/srv/src/pkg/hello.txt") == "hello" })
	if out := p.execOut("app", "cat", "/srv/src/scratch.tmp"); out != "" {
		t.Errorf("an ignored file was synced: %q", out)
	}
	// ... and a deleted one goes.
	if err := os.Remove(filepath.Join(p.dir, "src", "pkg", "hello.txt")); err != nil {
		t.Fatal(err)
	}
	eventually("sync of a deletion", func() bool { return p.execOut("app", "ls", "/srv/src/pkg/hello.txt") == "" })

	// sync+exec: the reload command sees the new file.
	write("conf/settings", "mode=b\n")
	eventually("sync+exec", func() bool { return p.execOut("app", "cat", "/tmp/reloaded") == "mode=b" })

	// sync+restart: the file arrives and the container's process starts again
	// (same container, a new start: pid 1's start time, field 22 of its stat).
	startTime := func() string { return p.execOut("app", "sh", "-c", "cut -d' ' -f22 /proc/1/stat") }
	startedBefore := startTime()
	if startedBefore == "" {
		t.Fatal("no start time of the container's pid 1")
	}
	write("restart/flag", "v2\n")
	eventually("sync+restart", func() bool {
		now := startTime()
		return p.execOut("app", "cat", "/etc/restart/flag") == "v2" && now != "" && now != startedBefore
	})

	// rebuild: a change to the build context makes a new image and container.
	before := p.ps()[0].ID
	write("app/version", "two\n")
	eventually("rebuild", func() bool {
		e := p.ps()
		return len(e) == 1 && e[0].ID != before && p.execOut("app", "cat", "/version") == "two"
	})
	p.berth("watch", "stop", "develop")
}
