package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// busyboxEngine is an engine on a fresh root with a busybox image.
func busyboxEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	return e
}

// start creates and starts a container of cfg (busybox, no network unless
// cfg says otherwise).
func start(t *testing.T, e *engine.Engine, cfg container.Config) container.Container {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	if cfg.NetworkMode == "" && len(cfg.Networks) == 0 {
		cfg.NetworkMode = "none"
	}
	ctx := context.Background()
	c, err := e.Containers.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Containers.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.Containers.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitExit waits for the container to stop and returns its exit code.
func waitExit(t *testing.T, e *engine.Engine, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := e.Containers.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// logText is the container's log as "stream:line" entries.
func logText(t *testing.T, m *container.Manager, id string, opts logs.ReadOptions) string {
	t.Helper()
	var b strings.Builder
	err := m.Logs(context.Background(), id, opts, func(e logs.Entry) error {
		b.WriteString(e.Stream + ":" + string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// logLines is the container's log lines of one stream, newlines dropped.
func logLines(t *testing.T, m *container.Manager, id, stream string) []string {
	t.Helper()
	var out []string
	err := m.Logs(context.Background(), id, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		if e.Stream == stream {
			out = append(out, strings.TrimRight(string(e.Line), "\r\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// counterScript prints 0, 1, 2... on stdout, one line every period
// (busybox usleep microseconds), forever.
func counterScript(usec int) []string {
	return []string{"sh", "-c", fmt.Sprintf("i=0; while :; do echo $i; i=$((i+1)); usleep %d; done", usec)}
}

// checkCounter checks that lines are 0, 1, 2... with no gap and no
// repeat, and returns how many there are.
func checkCounter(t *testing.T, name string, lines []string) int {
	t.Helper()
	for i, l := range lines {
		if l != fmt.Sprint(i) {
			t.Fatalf("%s: line %d is %q, want %d (lines around: %q)", name, i, l, i, lines[max(0, i-2):min(len(lines), i+3)])
		}
	}
	return len(lines)
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer = testutil.SyncBuffer

// logsAll reads a whole log.
var logsAll = logs.ReadOptions{Tail: -1}

// followLogs follows a whole log.
var followLogs = logs.ReadOptions{Tail: -1, Follow: true}

type logEntry = logs.Entry
