package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
)

// TestLogsTailSinceUntilAndBothStreams checks what `logs` selects: both
// streams, each in order, in the order read; --tail; --since and --until
// on the entries' own times.
func TestLogsTailSinceUntilAndBothStreams(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c := start(t, e, container.Config{Cmd: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"}})
	waitExit(t, e, c.ID)
	var all []logs.Entry
	if err := e.Containers.Logs(context.Background(), c.ID, logsAll, func(en logs.Entry) error {
		all = append(all, en)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{"stdout": 1, "stderr": 1}
	prefix := map[string]string{"stdout": "out", "stderr": "err"}
	for i, en := range all {
		if want := fmt.Sprintf("%s%d\n", prefix[en.Stream], next[en.Stream]); string(en.Line) != want {
			t.Fatalf("entry %d: %s %q, want %q", i, en.Stream, en.Line, want)
		}
		next[en.Stream]++
		if i > 0 && en.Time.Before(all[i-1].Time) {
			t.Fatalf("entry %d is older than the one before", i)
		}
	}
	if len(all) != 10 {
		t.Fatalf("%d entries, want 10", len(all))
	}
	line := func(en logs.Entry) string { return en.Stream + ":" + string(en.Line) }
	if got, want := logText(t, e.Containers, c.ID, logs.ReadOptions{Tail: 2}), line(all[8])+line(all[9]); got != want {
		t.Fatalf("tail 2: %q, want %q", got, want)
	}
	got := logText(t, e.Containers, c.ID, logs.ReadOptions{Tail: -1, Since: all[3].Time, Until: all[6].Time})
	var want strings.Builder
	for _, en := range all {
		if !en.Time.Before(all[3].Time) && en.Time.Before(all[6].Time) {
			want.WriteString(line(en))
		}
	}
	if got != want.String() || got == "" {
		t.Fatalf("since/until: %q, want %q", got, want.String())
	}
}

// TestLogsFollowUntilTheContainerStops follows a container's log while it
// runs and returns once it stopped, with its last line.
func TestLogsFollowUntilTheContainerStops(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctl := t.TempDir()
	c := start(t, e, container.Config{
		Cmd:    []string{"sh", "-c", "echo first; while [ ! -f /ctl/go ]; do usleep 10000; done; echo last >&2"},
		Mounts: []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}},
	})
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- e.Containers.Logs(context.Background(), c.ID, logs.ReadOptions{Tail: -1, Follow: true}, func(en logs.Entry) error {
			_, err := out.Write([]byte(en.Stream + ":" + string(en.Line)))
			return err
		})
	}()
	out.WaitFor(t, "stdout:first\n")
	select {
	case err := <-done:
		t.Fatalf("follow ended while the container runs: %v", err)
	default:
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not end when the container stopped")
	}
	if out.String() != "stdout:first\nstderr:last\n" {
		t.Fatalf("followed %q", out.String())
	}
}

// TestLogRotationFromLoggingOptions applies Compose's max-size and
// max-file: the log is cut into at most max-file files, and reading it
// returns the newest lines, in order, ending with the last.
func TestLogRotationFromLoggingOptions(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c := start(t, e, container.Config{
		Cmd: []string{"seq", "1", "2000"},
		Log: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "4k", "max-file": "3"}},
	})
	waitExit(t, e, c.ID)
	for _, suffix := range []string{"", ".1", ".2"} {
		info, err := os.Stat(c.LogPath + suffix)
		if err != nil || info.Size() > 4<<10 {
			t.Fatalf("log file %s: %v (size over max-size?)", suffix, err)
		}
	}
	if _, err := os.Stat(c.LogPath + ".3"); !os.IsNotExist(err) {
		t.Fatalf("a fourth log file with max-file 3: %v", err)
	}
	lines := logLines(t, e.Containers, c.ID, "stdout")
	if len(lines) < 50 || len(lines) >= 2000 || lines[len(lines)-1] != "2000" {
		t.Fatalf("%d lines kept, last %q", len(lines), lines[len(lines)-1])
	}
	first := 2000 - len(lines) + 1
	for i, l := range lines {
		if l != fmt.Sprint(first+i) {
			t.Fatalf("line %d is %q, want %d", i, l, first+i)
		}
	}
}
