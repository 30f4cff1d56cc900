package monitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/testutil"
)

// shellRuntime runs the bundle argument as a busybox shell script in a plain
// child process: enough to exercise the monitor's pipes, logs and exits with
// real processes, without namespaces (the runtime's own tests cover those).
type shellRuntime struct {
	busybox string
	mu      sync.Mutex
	gates   map[string]*os.File
}

func (r *shellRuntime) Create(_ context.Context, id, script string, stdio Stdio) (int, error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer gateR.Close()
	// The child waits for Start by reading its gate, as a created container waits.
	cmd := exec.Command(r.busybox, "sh", "-c", "read _ <&3; "+script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.ExtraFiles = []*os.File{gateR}
	if err := cmd.Start(); err != nil {
		gateW.Close()
		return 0, err
	}
	r.mu.Lock()
	r.gates[id] = gateW
	r.mu.Unlock()
	return cmd.Process.Pid, nil
}

func (r *shellRuntime) Start(_ context.Context, id string) error {
	r.mu.Lock()
	gate := r.gates[id]
	delete(r.gates, id)
	r.mu.Unlock()
	if gate == nil {
		return fmt.Errorf("%s: not created", id)
	}
	defer gate.Close()
	_, err := gate.WriteString("go\n")
	return err
}

func startMonitor(t *testing.T) (*Client, string) {
	t.Helper()
	root := t.TempDir()
	rt := &shellRuntime{busybox: testutil.Busybox(t), gates: map[string]*os.File{}}
	done := make(chan error, 1)
	go func() { done <- Serve(root, rt, "test", slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	c := NewClient(root)
	testutil.Eventually(t, 5*time.Second, func() error { _, err := c.Ping(context.Background()); return err })
	t.Cleanup(func() {
		if err := c.Shutdown(context.Background(), false); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return c, root
}

func run(t *testing.T, c *Client, root, id, script string) Exit {
	t.Helper()
	ctx := context.Background()
	exits, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	req := Request{ID: id, Bundle: script, Log: LogOptions{Path: filepath.Join(dir, "log")}, ExitFile: filepath.Join(dir, "exit.json")}
	if _, err := c.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-exits:
			if e.ID != id {
				continue
			}
			var recorded Exit
			if err := atomicfile.ReadJSON(req.ExitFile, &recorded); err != nil {
				t.Fatalf("exit told before it was recorded: %v", err)
			}
			if recorded != e {
				t.Fatalf("recorded %+v, told %+v", recorded, e)
			}
			return e
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no exit", id)
		}
	}
}

func readLog(t *testing.T, path string) []logs.Entry {
	t.Helper()
	var out []logs.Entry
	err := logs.Read(context.Background(), path, logs.ReadOptions{Tail: -1}, nil, func(e logs.Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOutputIsLoggedAndExitRecorded(t *testing.T) {
	c, root := startMonitor(t)
	e := run(t, c, root, "a", `echo one; echo two >&2; printf 'no newline'; exit 3`)
	if e.Status != 3 || e.Lost {
		t.Fatalf("exit %+v, want status 3", e)
	}
	got := readLog(t, filepath.Join(root, "a", "log"))
	var lines []string
	for _, en := range got {
		lines = append(lines, en.Stream+":"+string(en.Line))
	}
	joined := strings.Join(lines, "|")
	for _, want := range []string{"stdout:one\n", "stderr:two\n", "stdout:no newline"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("log lacks %q: %q", want, joined)
		}
	}
}

func TestSignalledExitIs128PlusSignal(t *testing.T) {
	c, root := startMonitor(t)
	if e := run(t, c, root, "k", `kill -9 $$`); e.Status != 137 || e.Signal != 9 {
		t.Fatalf("exit %+v, want 137 by signal 9", e)
	}
}

// TestFloodLosesNoLine guards the promise that a container flooding its
// output loses no line: the pipe's back-pressure slows the writer instead.
func TestFloodLosesNoLine(t *testing.T) {
	c, root := startMonitor(t)
	const n = 200000
	e := run(t, c, root, "flood", fmt.Sprintf(`seq 1 %d; seq 1 %d >&2`, n, n))
	if e.Status != 0 {
		t.Fatalf("exit %+v", e)
	}
	got := readLog(t, filepath.Join(root, "flood", "log"))
	next := map[string]int{"stdout": 1, "stderr": 1}
	for _, en := range got {
		want := fmt.Sprintf("%d\n", next[en.Stream])
		if string(en.Line) != want {
			t.Fatalf("%s: got %q, want %q", en.Stream, en.Line, want)
		}
		next[en.Stream]++
	}
	if next["stdout"] != n+1 || next["stderr"] != n+1 {
		t.Fatalf("lines logged: %v, want %d each", next, n)
	}
}

func TestManyContainersAtOnce(t *testing.T) {
	c, root := startMonitor(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			if e := run(t, c, root, id, fmt.Sprintf("echo %s; exit %d", id, i)); e.Status != i {
				t.Errorf("%s: status %d", id, e.Status)
			}
		}()
	}
	wg.Wait()
	if list, err := c.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("after all exited, list %v %v", list, err)
	}
}
