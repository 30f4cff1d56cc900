package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/enginetest"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

func readLogs(t *testing.T, m *container.Manager, id string) string {
	t.Helper()
	var b strings.Builder
	err := m.Logs(context.Background(), id, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		b.WriteString(e.Stream + ":" + string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestContainerRunsLogsAndExits(t *testing.T) {
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	ctx := context.Background()
	c, err := e.Containers.Create(ctx, container.Config{
		Name: "hello", Image: "busybox",
		Cmd: []string{"sh", "-c", "echo hello; echo oops >&2; echo pid=$$; exit 3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Containers.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	code, err := e.Containers.Wait(waitCtx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	out := readLogs(t, e.Containers, c.ID)
	for _, want := range []string{"stdout:hello\n", "stderr:oops\n", "stdout:pid=1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	got, err := e.Containers.Get("hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Status != container.Exited || got.State.ExitCode != 3 {
		t.Fatalf("state %+v", got.State)
	}
	if err := e.Containers.Remove(ctx, c.ID, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}
