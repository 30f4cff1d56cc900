package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/testutil"
)

var sleeper = []string{"sleep", "1000"}

func TestExecPassesStreamsEnvUserDirAndExitCode(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	c := start(t, e, container.Config{Name: "execd", Cmd: sleeper, Env: []string{"FROM_CONTAINER=yes"}, WorkingDir: "/etc"})

	var out, errb syncBuffer
	code, err := e.Containers.Exec(ctx, c.ID, container.ExecConfig{
		Cmd: []string{"sh", "-c", `echo out $FROM_CONTAINER $EXTRA $(pwd) $$; echo err >&2; exit 5`},
		Env: []string{"EXTRA=1"},
	}, container.ExecIO{Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	// In the container's pid namespace: not pid 1 (that is sleep), a small pid.
	var pid int
	if code != 5 || errb.String() != "err\n" {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if _, err := fmt.Sscanf(out.String(), "out yes 1 /etc %d\n", &pid); err != nil || pid < 2 || pid > 100 {
		t.Fatalf("stdout %q: want the container's env, dir and a pid of its namespace", out.String())
	}

	out = syncBuffer{}
	code, err = e.Containers.Exec(ctx, c.ID, container.ExecConfig{
		Cmd: []string{"sh", "-c", "id -u; id -g; pwd"}, User: "1000:1001", WorkingDir: "/tmp",
	}, container.ExecIO{Stdout: &out})
	if err != nil || code != 0 || out.String() != "1000\n1001\n/tmp\n" {
		t.Fatalf("-u -w: exit %d %v, output %q", code, err, out.String())
	}

	out = syncBuffer{}
	code, err = e.Containers.Exec(ctx, c.ID, container.ExecConfig{Cmd: []string{"cat"}, AttachStdin: true},
		container.ExecIO{Stdin: strings.NewReader("piped\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "piped\n" {
		t.Fatalf("stdin: exit %d %v, output %q", code, err, out.String())
	}

	id, err := e.Containers.CreateExec(c.ID, container.ExecConfig{Cmd: []string{"no-such-command"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Containers.StartExec(ctx, id, container.ExecIO{}); !errdefs.IsNotFound(err) {
		t.Fatalf("missing command: %v, want not found", err)
	}
	if st, err := e.Containers.InspectExec(id); err != nil || st.ExitCode == nil || *st.ExitCode != 127 || st.Running {
		t.Fatalf("missing command's state: %+v %v, want exit code 127", st, err)
	}
}

// capEff reads the effective capabilities of an exec'd process.
func capEff(t *testing.T, e interface {
	Exec(context.Context, string, container.ExecConfig, container.ExecIO) (int, error)
}, id string, privileged bool) string {
	t.Helper()
	var out syncBuffer
	code, err := e.Exec(context.Background(), id, container.ExecConfig{
		Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status"}, Privileged: privileged,
	}, container.ExecIO{Stdout: &out})
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(out.String(), "CapEff:"))
}

func TestExecPrivilegedGetsEveryCapability(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c := start(t, e, container.Config{Cmd: sleeper})
	plain, priv := capEff(t, e.Containers, c.ID, false), capEff(t, e.Containers, c.ID, true)
	const sysAdmin = 1 << 21
	p, err1 := strconv.ParseUint(plain, 16, 64)
	q, err2 := strconv.ParseUint(priv, 16, 64)
	if err1 != nil || err2 != nil || p&sysAdmin != 0 || q&sysAdmin == 0 || q&p != p {
		t.Fatalf("CapEff plain %s, privileged %s: want CAP_SYS_ADMIN only when privileged", plain, priv)
	}
}

func TestExecTerminalSizeAndResize(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	c := start(t, e, container.Config{Cmd: sleeper})
	id, err := e.Containers.CreateExec(c.ID, container.ExecConfig{
		Cmd: []string{"sh", "-c", "tty; stty size; read x; stty size; exit 3"}, Tty: true, AttachStdin: true,
		ConsoleSize: [2]uint{30, 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	in, input := io.Pipe()
	defer input.Close()
	var out syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := e.Containers.StartExec(ctx, id, container.ExecIO{Stdin: in, Stdout: &out})
		done <- result{code, err}
	}()
	out.WaitFor(t, "30 100\r\n")
	if err := e.Containers.ResizeExec(id, 40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(input, "\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.code != 3 {
			t.Fatalf("exit %d %v", r.code, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exec did not end")
	}
	if got := out.String(); !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "40 120\r\n") {
		t.Fatalf("terminal output %q", got)
	}
	if err := e.Containers.ResizeExec(id, 1, 1); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("resize after the end: %v", err)
	}
}

// TestHealthcheckProbesWithExec guards the healthcheck's use of the real
// exec: a failing probe makes the container unhealthy, a passing one
// healthy again, with the probes' output in the health log.
func TestHealthcheckProbesWithExec(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	c := start(t, e, container.Config{Cmd: sleeper, Healthcheck: &container.Healthcheck{
		Test: []string{"CMD-SHELL", "echo probing; test -f /tmp/ok"}, Interval: 100 * time.Millisecond,
		StartInterval: 50 * time.Millisecond, Retries: 2, Timeout: 5 * time.Second,
	}})
	health := func(want string) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, func() error {
			got, err := e.Containers.Get(c.ID)
			if err != nil {
				return err
			}
			if h := got.State.Health; h == nil || h.Status != want {
				return fmt.Errorf("health %+v, want %s", h, want)
			}
			return nil
		})
	}
	health("unhealthy")
	got, _ := e.Containers.Get(c.ID)
	last := got.State.Health.Log[len(got.State.Health.Log)-1]
	if last.ExitCode != 1 || last.Output != "probing\n" {
		t.Fatalf("last probe %+v", last)
	}
	if code, err := e.Containers.Exec(context.Background(), c.ID, container.ExecConfig{Cmd: []string{"touch", "/tmp/ok"}}, container.ExecIO{}); err != nil || code != 0 {
		t.Fatalf("touch: %d %v", code, err)
	}
	health("healthy")
}

func TestTopAndStats(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	ctx := context.Background()
	c := start(t, e, container.Config{Cmd: []string{"sh", "-c", "sleep 1000 & sleep 2000"}})
	testutil.Eventually(t, 10*time.Second, func() error {
		top, err := e.Containers.Top(ctx, c.ID, nil)
		if err != nil {
			return err
		}
		var cmds []string
		for _, p := range top.Processes {
			cmds = append(cmds, p[len(p)-1])
		}
		// The shell's own command line names both sleeps: wait for the
		// two processes themselves (the shell execs the second).
		if strings.Join(top.Titles, " ") != "UID PID PPID C STIME TTY TIME CMD" || !slices.Contains(cmds, "sleep 1000") || !slices.Contains(cmds, "sleep 2000") {
			return fmt.Errorf("top %+v", top)
		}
		if top.Processes[0][0] != "root" {
			return fmt.Errorf("top's user column %q", top.Processes[0][0])
		}
		return nil
	})
	st, err := e.Containers.Stats(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids < 2 || st.MemoryUsage == 0 || st.MemoryLimit == 0 || st.Name != c.Name {
		t.Fatalf("stats %+v", st)
	}
	if err := e.Containers.Stop(ctx, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Containers.Stats(ctx, c.ID); !errdefs.IsConflict(err) {
		t.Fatalf("stats of a stopped container: %v", err)
	}
	if _, err := e.Containers.Top(ctx, c.ID, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("top of a stopped container: %v", err)
	}
}
