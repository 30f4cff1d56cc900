package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/testutil"
)

// engineRoot is a state root with a busybox image, served by a daemon the
// CLI starts on demand; at the end every container is removed and the
// daemon stopped (the leak check follows).
type engineRoot struct {
	t    *testing.T
	root string
}

func newEngineRoot(t *testing.T) *engineRoot {
	t.Helper()
	testutil.RequireRoot(t)
	r := &engineRoot{t: t, root: testutil.StateRoot(t)}
	t.Cleanup(func() {
		if ids, _, err := r.run(nil, "container", "ls", "-a", "-q", "--no-trunc"); err == nil && strings.TrimSpace(ids) != "" {
			_, _, _ = r.run(nil, append([]string{"container", "rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
		// The default network is made on first use; it goes with the test.
		if names, _, err := r.run(nil, "network", "ls", "-q"); err == nil && strings.TrimSpace(names) != "" {
			_, _, _ = r.run(nil, append([]string{"network", "rm"}, strings.Fields(names)...)...)
		}
		stopDaemon(t, r.root)
	})
	layer, _ := imagetest.BusyboxLayer(t)
	tar := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tar, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	r.ok(nil, "image", "import", "--change", `CMD ["sh"]`, tar, "busybox:latest")
	return r
}

// run runs the CLI with stdin and returns stdout, stderr and its error.
func (r *engineRoot) run(stdin io.Reader, args ...string) (string, string, error) {
	cmd := exec.Command(testutil.BerthBinary(r.t), append([]string{"--root", r.root}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_HOST=")
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// ok runs the CLI and fails the test unless it succeeds.
func (r *engineRoot) ok(stdin io.Reader, args ...string) string {
	r.t.Helper()
	out, stderr, err := r.run(stdin, args...)
	if err != nil {
		r.t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// code runs the CLI and returns its exit code, stdout and stderr.
func (r *engineRoot) code(stdin io.Reader, args ...string) (int, string, string) {
	r.t.Helper()
	out, stderr, err := r.run(stdin, args...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out, stderr
	case errors.As(err, &exit):
		return exit.ExitCode(), out, stderr
	}
	r.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	return -1, "", ""
}

func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var rows []T
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("--format json: %v\n%s", err, out)
		}
		rows = append(rows, v)
	}
	return rows
}

func TestContainerRunPassesStreamsAndExitCodes(t *testing.T) {
	t.Parallel()
	r := newEngineRoot(t)
	code, out, stderr := r.code(nil, "container", "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || stderr != "err\n" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if out := r.ok(strings.NewReader("piped\nlines\n"), "container", "run", "--rm", "-i", "busybox", "cat"); out != "piped\nlines\n" {
		t.Fatalf("run -i: %q", out)
	}
	if code, _, stderr := r.code(nil, "container", "run", "--rm", "busybox", "no-such-command"); code != 127 || !strings.Contains(stderr, "not found") {
		t.Fatalf("a missing command: exit %d, stderr %q", code, stderr)
	}
	if left := r.ok(nil, "container", "ls", "-a", "-q"); left != "" {
		t.Fatalf("--rm left containers: %q", left)
	}
	if code, _, stderr := r.code(nil, "container", "run", "--rm", "--restart", "always", "busybox", "true"); code != 125 || !strings.Contains(stderr, "conflicting options") {
		t.Fatalf("--rm with a restart policy: exit %d, %q", code, stderr)
	}
}

// TestRunRmReturnsOnceTheContainerIsGone: the daemon removes a --rm
// container after its exit; run returns only then, as docker's does, even
// when the removal is slow (here held for a second).
func TestRunRmReturnsOnceTheContainerIsGone(t *testing.T) {
	t.Setenv(failpoint.Env, "container/auto-remove=sleep(1s)")
	r := newEngineRoot(t)
	if code, _, stderr := r.code(nil, "container", "run", "--rm", "busybox", "sh", "-c", "exit 4"); code != 4 {
		t.Fatalf("run --rm: exit %d, %q", code, stderr)
	}
	if left := r.ok(nil, "container", "ls", "-a", "-q"); left != "" {
		t.Fatalf("run --rm returned before its container was removed: %q", left)
	}
}

func TestContainerLifecycleThroughTheCLI(t *testing.T) {
	t.Parallel()
	r := newEngineRoot(t)
	id := strings.TrimSpace(r.ok(nil, "container", "run", "-d", "--name", "web", "-e", "X=1", "-l", "tier=front",
		"busybox", "sh", "-c", "echo started; trap 'exit 0' TERM; while :; do usleep 10000; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want the id", id)
	}
	type row struct{ ID, Names, State, Image, Labels string }
	rows := jsonLines[row](t, r.ok(nil, "container", "ls", "--format", "json"))
	if len(rows) != 1 || rows[0].Names != "web" || rows[0].State != "running" || rows[0].ID != id[:12] || rows[0].Labels != "tier=front" {
		t.Fatalf("ls: %+v", rows)
	}
	if out := r.ok(nil, "container", "exec", "-w", "/tmp", "-u", "1000", "web", "sh", "-c", "echo $X $(id -u) $(pwd)"); out != "1 1000 /tmp\n" {
		t.Fatalf("exec: %q", out)
	}
	if code, _, _ := r.code(nil, "container", "exec", "web", "sh", "-c", "exit 9"); code != 9 {
		t.Fatalf("exec's exit code %d, want 9", code)
	}
	if code, _, _ := r.code(nil, "container", "exec", "web", "no-such-command"); code != 127 {
		t.Fatalf("exec of a missing command: exit %d, want 127", code)
	}
	if out := r.ok(strings.NewReader("in\n"), "container", "exec", "-i", "web", "cat"); out != "in\n" {
		t.Fatalf("exec -i: %q", out)
	}
	var inspected []struct {
		ID     string `json:"Id"`
		Config struct{ Labels map[string]string }
		State  struct{ Status string }
	}
	if err := json.Unmarshal([]byte(r.ok(nil, "container", "inspect", "web")), &inspected); err != nil || len(inspected) != 1 || inspected[0].ID != id {
		t.Fatalf("inspect: %+v %v", inspected, err)
	}
	if out := r.ok(nil, "container", "inspect", "-f", "{{.State.Status}} {{.Config.Labels.tier}}", "web"); out != "running front\n" {
		t.Fatalf("inspect -f: %q", out)
	}
	if top := r.ok(nil, "container", "top", "web"); !strings.Contains(top, "CMD") || !strings.Contains(top, "sh -c echo started") {
		t.Fatalf("top:\n%s", top)
	}
	type stats struct{ Name, PIDs, MemUsage string }
	if st := jsonLines[stats](t, r.ok(nil, "container", "stats", "--no-stream", "--format", "json")); len(st) != 1 || st[0].Name != "web" || st[0].PIDs == "0" {
		t.Fatalf("stats: %+v", st)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if out := r.ok(nil, "container", "logs", "-t", "web"); !strings.HasSuffix(out, " started\n") {
			return fmt.Errorf("logs -t: %q", out)
		}
		return nil
	})
	if out := r.ok(nil, "container", "stop", "web"); out != "web\n" {
		t.Fatalf("stop printed %q", out)
	}
	if out := r.ok(nil, "container", "wait", "web"); out != "0\n" {
		t.Fatalf("wait: %q (the trap exits 0 on TERM)", out)
	}
	if code, _, stderr := r.code(nil, "container", "rm", "web", "nosuch"); code != 1 || !strings.Contains(stderr, "nosuch") {
		t.Fatalf("rm of a missing container: exit %d, %q", code, stderr)
	}
	if left := r.ok(nil, "container", "ls", "-a", "-q"); left != "" {
		t.Fatalf("after rm: %q", left)
	}
}

// openPty returns a new pty's master and slave, the slave sized rows x cols.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	s, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		t.Fatal(e)
	}
	if err := unix.IoctlSetWinsize(int(s), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts")
}

// onTerminal runs the CLI on a terminal of rows x cols, types input, and
// returns what the terminal showed and the exit code.
func (r *engineRoot) onTerminal(rows, cols uint16, input string, args ...string) (string, int) {
	r.t.Helper()
	master, slave := openPty(r.t, rows, cols)
	defer master.Close()
	cmd := exec.Command(testutil.BerthBinary(r.t), append([]string{"--root", r.root}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_HOST=")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// Type once the shell prompted: it reads the terminal from then on.
	testutil.Eventually(r.t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(screen.String(), "# ") {
			return fmt.Errorf("no prompt yet: %q", screen.String())
		}
		return nil
	})
	if _, err := io.WriteString(master, input); err != nil {
		r.t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-waited
		mu.Lock()
		defer mu.Unlock()
		r.t.Fatalf("%v did not end within 30s of its input; the terminal showed %q", args, screen.String())
	}
	<-read
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return screen.String(), code
}

// TestRunAndExecWithATerminal drives `run -it` and `exec -it` from a real
// terminal: the container's pty has the terminal's size, what is typed
// reaches the shell, and the exit code comes back.
func TestRunAndExecWithATerminal(t *testing.T) {
	t.Parallel()
	r := newEngineRoot(t)
	screen, code := r.onTerminal(33, 99, "stty size; tty; exit 5\r", "container", "run", "-it", "--rm", "busybox", "sh")
	if code != 5 || !strings.Contains(screen, "33 99\r\n") || !strings.Contains(screen, "/dev/pts/0\r\n") {
		t.Fatalf("run -it: exit %d, screen %q", code, screen)
	}
	r.ok(nil, "container", "run", "-d", "--name", "box", "busybox", "sleep", "1000")
	screen, code = r.onTerminal(20, 70, "stty size; exit 6\r", "container", "exec", "-it", "box", "sh")
	if code != 6 || !strings.Contains(screen, "20 70\r\n") {
		t.Fatalf("exec -it: exit %d, screen %q", code, screen)
	}
	if code, _, stderr := r.code(strings.NewReader(""), "container", "exec", "-it", "box", "sh"); code != 1 || !strings.Contains(stderr, "not a TTY") {
		t.Fatalf("exec -it without a terminal: exit %d, %q", code, stderr)
	}
}

// TestDetachKeysLeaveTheProcessRunning: ctrl-p ctrl-q (docker's keys)
// on an attached terminal, or the keys --detach-keys names, end the
// command with 0 and leave the container, or the exec'd shell, running.
func TestDetachKeysLeaveTheProcessRunning(t *testing.T) {
	t.Parallel()
	r := newEngineRoot(t)
	if _, code := r.onTerminal(24, 80, "\x10\x11", "container", "run", "-it", "--name", "shell", "busybox", "sh"); code != 0 {
		t.Fatalf("run -it, then ctrl-p ctrl-q: exit %d", code)
	}
	if out := r.ok(nil, "container", "inspect", "-f", "{{.State.Status}}", "shell"); out != "running\n" {
		t.Fatalf("after detaching: %q", out)
	}
	// The exec'd shell runs the line typed before the keys, and then waits
	// on its terminal for more, as docker's does.
	if _, code := r.onTerminal(24, 80, "touch /detached\r\x01x", "container", "exec", "-it", "--detach-keys", "ctrl-a,x", "shell", "sh"); code != 0 {
		t.Fatalf("exec -it, then ctrl-a x: exit %d", code)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if code, _, _ := r.code(nil, "container", "exec", "shell", "test", "-e", "/detached"); code != 0 {
			return errors.New("the detached shell left no mark")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	shells := 0
	for _, line := range strings.Split(r.ok(nil, "container", "top", "shell"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "sh" {
			shells++
		}
	}
	if shells != 2 {
		t.Fatalf("%d shells run in the container, want the run's and the exec's:\n%s", shells, r.ok(nil, "container", "top", "shell"))
	}
	if out := r.ok(nil, "container", "inspect", "-f", "{{.State.Status}}", "shell"); out != "running\n" {
		t.Fatalf("a while after detaching: %q", out)
	}
	if code, _, stderr := r.code(nil, "container", "attach", "--detach-keys", "ctrl-1", "shell"); code == 0 || !strings.Contains(stderr, "invalid detach keys") {
		t.Fatalf("attach with bad keys: exit %d, %q", code, stderr)
	}
}

func TestVolumeCommands(t *testing.T) {
	t.Parallel()
	r := newEngineRoot(t)
	if out := r.ok(nil, "volume", "create", "--label", "app=db", "data"); out != "data\n" {
		t.Fatalf("create: %q", out)
	}
	r.ok(nil, "container", "run", "--name", "user", "-v", "data:/data", "-v", "/anon", "busybox", "sh", "-c", "echo x > /data/f")
	type row struct{ Name, Driver, Labels, Links string }
	rows := jsonLines[row](t, r.ok(nil, "volume", "ls", "--format", "json", "--filter", "label=app=db"))
	if len(rows) != 1 || rows[0].Name != "data" || rows[0].Driver != "local" || rows[0].Labels != "app=db" || rows[0].Links != "1" {
		t.Fatalf("ls: %+v", rows)
	}
	var vols []struct{ Name, Mountpoint string }
	if err := json.Unmarshal([]byte(r.ok(nil, "volume", "inspect", "data")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(vols[0].Mountpoint, "f")); err != nil || string(b) != "x\n" {
		t.Fatalf("volume content %q %v", b, err)
	}
	if code, _, stderr := r.code(nil, "volume", "rm", "data"); code != 1 || !strings.Contains(stderr, "in use") {
		t.Fatalf("rm of a volume in use: exit %d, %q", code, stderr)
	}
	if got := len(strings.Fields(r.ok(nil, "volume", "ls", "-q"))); got != 2 {
		t.Fatalf("%d volumes, want data and the anonymous one", got)
	}
	r.ok(nil, "container", "rm", "user")
	// Unused now: prune takes the anonymous one only, prune -a the named one too.
	if out := r.ok(nil, "volume", "prune", "-f"); !strings.Contains(out, "Deleted Volumes:") || strings.Contains(out, "data\n") {
		t.Fatalf("prune: %q", out)
	}
	if out := r.ok(nil, "volume", "ls", "-q"); out != "data\n" {
		t.Fatalf("after prune: %q", out)
	}
	if out := r.ok(strings.NewReader("n\n"), "volume", "prune", "-a"); strings.Contains(out, "Deleted") {
		t.Fatalf("prune answered no still deleted: %q", out)
	}
	if out := r.ok(strings.NewReader("y\n"), "volume", "prune", "-a"); !strings.Contains(out, "data\n") || !strings.Contains(out, "Total reclaimed space: 2B") {
		t.Fatalf("prune -a: %q", out)
	}
}
