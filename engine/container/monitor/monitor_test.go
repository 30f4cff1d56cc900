package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestMain lets the test binary be the monitor (`test.binary
// __berth_monitor ROOT`), so that tests run it as a process of its own they
// can kill, replace and upgrade, as the daemon does with berth's.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == Entry {
		rt := &shellRuntime{busybox: os.Getenv("TEST_BUSYBOX"), gates: map[string]*os.File{}, scripts: map[string]string{}}
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := Serve(os.Args[2], rt, "test", log); err != nil {
			log.Error("monitor", "err", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// shellRuntime runs the bundle argument as a busybox shell script in a plain
// child process: enough to exercise the monitor's pipes, ptys, logs and
// exits with real processes, without namespaces (the runtime's own tests
// cover those). A bundle starting with "tty:" gets a pty.
type shellRuntime struct {
	busybox string
	mu      sync.Mutex
	gates   map[string]*os.File
	scripts map[string]string // of prepared shells, sent at Start
}

func (r *shellRuntime) Create(_ context.Context, id, script string, stdio Stdio) (int, *os.File, error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer gateR.Close()
	// The child waits for Start by reading its gate, as a created container waits.
	tty := strings.HasPrefix(script, "tty:")
	cmd := exec.Command(r.busybox, "sh", "-c", "read _ <&3; "+strings.TrimPrefix(script, "tty:"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.ExtraFiles = []*os.File{gateR}
	var master *os.File
	if tty {
		m, slave, err := openPty()
		if err != nil {
			gateW.Close()
			return 0, nil, err
		}
		defer slave.Close()
		master = m
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	if err := cmd.Start(); err != nil {
		gateW.Close()
		if master != nil {
			master.Close()
		}
		return 0, nil, err
	}
	r.mu.Lock()
	r.gates[id] = gateW
	r.mu.Unlock()
	return cmd.Process.Pid, master, nil
}

func (r *shellRuntime) Start(_ context.Context, id string, _ int) error {
	r.mu.Lock()
	gate := r.gates[id]
	script, prepared := r.scripts[id]
	delete(r.gates, id)
	delete(r.scripts, id)
	r.mu.Unlock()
	if gate == nil {
		return fmt.Errorf("%s: not created", id)
	}
	defer gate.Close()
	if prepared {
		_, err := gate.WriteString(script + "\n")
		return err
	}
	_, err := gate.WriteString("go\n")
	return err
}

// shellStage is a shell started by Prepare: it reads the script it is to
// run from its gate, which Start writes (no ttys).
type shellStage struct {
	cmd  *exec.Cmd
	gate *os.File
}

func (s *shellStage) Close() {
	s.gate.Close()
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func (r *shellRuntime) Prepare(_ string, _ []specs.LinuxNamespace, stdio Stdio) (PreparedStage, error) {
	return r.prepare(stdio, os.Getenv("TEST_PREPARED"))
}

// PrepareSpare is Prepare, recorded in $TEST_SPARES.
func (r *shellRuntime) PrepareSpare(stdio Stdio) (PreparedStage, error) {
	return r.prepare(stdio, os.Getenv("TEST_SPARES"))
}

// prepare starts a shell that runs the script its create sends, and
// appends its pid to record.
func (r *shellRuntime) prepare(stdio Stdio, record string) (PreparedStage, error) {
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer gateR.Close()
	// A stage nobody ends outlives the monitor, as a real one would not: it
	// shows in the tests.
	cmd := exec.Command(r.busybox, "sh", "-c", `read -r script <&3 || exec sleep 100; eval "$script"`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.ExtraFiles = []*os.File{gateR}
	if err := cmd.Start(); err != nil {
		gateW.Close()
		return nil, err
	}
	if f, err := os.OpenFile(record, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}
	return &shellStage{cmd: cmd, gate: gateW}, nil
}

func (s *shellStage) Claim(string, []specs.LinuxNamespace) error { return nil }

func (r *shellRuntime) CreatePrepared(_ context.Context, id, script string, stage PreparedStage) (int, *os.File, error) {
	s := stage.(*shellStage)
	r.mu.Lock()
	r.gates[id] = s.gate
	r.scripts[id] = script
	r.mu.Unlock()
	// The monitor reaps it from now on.
	return s.cmd.Process.Pid, nil, nil
}

// openPty returns a new pty's master and slave.
func openPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, err
	}
	s, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		unix.Close(m)
		return nil, nil, e
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts"), nil
}

// startMonitor runs the test binary as the monitor of a fresh root and
// shuts it down at the end.
func startMonitor(t *testing.T) (*Client, string) {
	t.Helper()
	root := t.TempDir()
	t.Setenv("TEST_BUSYBOX", testutil.Busybox(t))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(context.Background(), root, self)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(context.Background(), false); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return c, root
}

func monitorPid(t *testing.T, c *Client) int {
	t.Helper()
	resp, err := c.Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return resp.MonitorPid
}

type started struct {
	req     Request
	pid     int
	streams *Streams
}

// create creates and starts a container running script.
func create(t *testing.T, c *Client, root, id, script string, stdin bool) started {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	req := Request{ID: id, Bundle: script, Log: LogOptions{Path: filepath.Join(dir, "log")}, ExitFile: filepath.Join(dir, "exit.json"), Stdin: stdin, Terminal: strings.HasPrefix(script, "tty:")}
	pid, streams, err := c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(streams.Close)
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	return started{req: req, pid: pid, streams: streams}
}

// waitExit waits for id's exit on exits and checks it was recorded first.
func waitExit(t *testing.T, exits <-chan Exit, s started) Exit {
	t.Helper()
	for {
		select {
		case e, ok := <-exits:
			if !ok {
				t.Fatalf("%s: exit stream ended", s.req.ID)
			}
			if e.ID != s.req.ID {
				continue
			}
			var recorded Exit
			if err := atomicfile.ReadJSON(s.req.ExitFile, &recorded); err != nil {
				t.Fatalf("exit told before it was recorded: %v", err)
			}
			if recorded != e {
				t.Fatalf("recorded %+v, told %+v", recorded, e)
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no exit", s.req.ID)
		}
	}
}

func run(t *testing.T, c *Client, root, id, script string) Exit {
	t.Helper()
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return waitExit(t, exits, create(t, c, root, id, script, false))
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

// checkSequence checks that the stream's lines are from, from+1, ... to.
func checkSequence(t *testing.T, entries []logs.Entry, stream string, from, to int) {
	t.Helper()
	next := from
	for _, en := range entries {
		if en.Stream != stream {
			continue
		}
		if want := fmt.Sprintf("%d\n", next); string(en.Line) != want {
			t.Fatalf("%s: got %q, want %q", stream, en.Line, want)
		}
		next++
	}
	if next != to+1 {
		t.Fatalf("%s: lines %d..%d logged, want %d..%d", stream, from, next-1, from, to)
	}
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
	const n = 100000
	e := run(t, c, root, "flood", fmt.Sprintf(`seq 1 %d; seq 1 %d >&2`, n, n))
	if e.Status != 0 {
		t.Fatalf("exit %+v", e)
	}
	got := readLog(t, filepath.Join(root, "flood", "log"))
	checkSequence(t, got, "stdout", 1, n)
	checkSequence(t, got, "stderr", 1, n)
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

// attachAll reads an attachment to its end, by stream.
func attachAll(t *testing.T, a *Attachment) map[byte]*bytes.Buffer {
	t.Helper()
	out := map[byte]*bytes.Buffer{FrameStdout: {}, FrameStderr: {}}
	for {
		kind, data, err := a.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		out[kind].Write(data)
	}
}

func TestStdinPipeAndAttach(t *testing.T) {
	c, root := startMonitor(t)
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "cat", `echo ready >&2; cat; echo bye >&2`, true)
	a, err := c.Attach(context.Background(), "cat")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := io.WriteString(s.streams.Stdin, "one\ntwo\n"); err != nil {
		t.Fatal(err)
	}
	// The container reads EOF only once both ends are closed: the monitor's
	// and the daemon's duplicate.
	if err := c.CloseStdin(context.Background(), "cat"); err != nil {
		t.Fatal(err)
	}
	s.streams.Stdin.Close()
	s.streams.Stdin = nil
	got := attachAll(t, a)
	if e := waitExit(t, exits, s); e.Status != 0 {
		t.Fatalf("exit %+v", e)
	}
	if got[FrameStdout].String() != "one\ntwo\n" || !strings.HasSuffix(got[FrameStderr].String(), "bye\n") {
		t.Fatalf("attached stdout %q, stderr %q", got[FrameStdout], got[FrameStderr])
	}
	var lines []string
	for _, en := range readLog(t, s.req.Log.Path) {
		lines = append(lines, en.Stream+":"+string(en.Line))
	}
	if want := "stderr:ready\n|stdout:one\n|stdout:two\n|stderr:bye\n"; strings.Join(lines, "|") != want {
		t.Fatalf("log %q, want %q", strings.Join(lines, "|"), want)
	}
}

func TestTerminalIsLoggedAttachedAndWritable(t *testing.T) {
	c, root := startMonitor(t)
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "tty", `tty:stty -echo; [ -t 0 ] && echo is-a-tty; read x; echo got $x; exit 4`, false)
	if s.streams.Pty == nil || s.streams.Stdout != nil {
		t.Fatalf("streams of a terminal container: %+v", s.streams)
	}
	a, err := c.Attach(context.Background(), "tty")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, en := range readLog(t, s.req.Log.Path) {
			if string(en.Line) == "is-a-tty\r\n" {
				return nil
			}
		}
		return errors.New("no is-a-tty line yet")
	})
	if _, err := io.WriteString(s.streams.Pty, "hello\n"); err != nil {
		t.Fatal(err)
	}
	got := attachAll(t, a)
	if e := waitExit(t, exits, s); e.Status != 4 {
		t.Fatalf("exit %+v", e)
	}
	if !strings.Contains(got[FrameStdout].String(), "got hello\r\n") || got[FrameStderr].Len() != 0 {
		t.Fatalf("attached %q / %q", got[FrameStdout], got[FrameStderr])
	}
}

// TestSlowAttacherLosesNothing floods a container's output to an attacher
// that does not read for a while: the attacher and the log both get every
// line, since a lagging attacher pauses the reading of the container's
// pipe rather than dropping data.
func TestSlowAttacherLosesNothing(t *testing.T) {
	c, root := startMonitor(t)
	const n = 300000
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The gate on stdin lets the attacher be in place before the flood.
	s := create(t, c, root, "flood", fmt.Sprintf(`read x; seq 1 %d`, n), true)
	a, err := c.Attach(context.Background(), "flood")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := io.WriteString(s.streams.Stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	// Not reading, the attacher lags: the monitor stops reading the
	// container's pipe instead of queueing without bound or dropping.
	testutil.Eventually(t, 20*time.Second, func() error {
		list, err := c.List(context.Background())
		if err != nil || len(list) != 1 || !list[0].Paused {
			return fmt.Errorf("not paused: %+v %v", list, err)
		}
		return nil
	})
	var got bytes.Buffer
	for {
		kind, data, err := a.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || kind != FrameStdout {
			t.Fatalf("attach: %v, kind %d", err, kind)
		}
		got.Write(data)
	}
	waitExit(t, exits, s)
	var want bytes.Buffer
	for i := 1; i <= n; i++ {
		want.WriteString(strconv.Itoa(i) + "\n")
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("attached %d bytes, want %d", got.Len(), want.Len())
	}
	checkSequence(t, readLog(t, s.req.Log.Path), "stdout", 1, n)
}

// TestKilledMonitorIsReplacedWithoutLosingOutput kills the monitor with
// SIGKILL while a container floods its output: the duplicates of the pipes
// that the test holds (as the daemon does) keep the container from dying
// of SIGPIPE, and a new monitor that adopts them logs every line. The
// container's exit status is lost (it was reparented), and says so.
func TestKilledMonitorIsReplacedWithoutLosingOutput(t *testing.T) {
	c, root := startMonitor(t)
	const first, n = 1000, 100000
	s := create(t, c, root, "survivor", fmt.Sprintf(`seq 1 %d; read x; seq %d %d; exit 3`, first, first+1, n), true)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := len(readLog(t, s.req.Log.Path)); got < first {
			return fmt.Errorf("%d lines logged", got)
		}
		return nil
	})
	old := monitorPid(t, c)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Gone, not only silent: its socket may close before its lock does,
	// and a new monitor must find the lock free.
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := unix.Kill(old, 0); !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("the killed monitor, pid %d, is still there", old)
		}
		return nil
	})
	// With no monitor at all, the container goes on and fills its pipe.
	if _, err := io.WriteString(s.streams.Stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	c2, err := Ensure(context.Background(), root, self)
	if err != nil {
		t.Fatal(err)
	}
	exits, err := c2.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Adopt(context.Background(), Request{ID: s.req.ID, Pid: s.pid, ExitFile: s.req.ExitFile, Log: s.req.Log}, s.streams); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, exits, s)
	if !e.Lost || e.Status != 255 {
		t.Fatalf("exit %+v: want a lost status", e)
	}
	checkSequence(t, readLog(t, s.req.Log.Path), "stdout", 1, n)
}

// nextBinary copies the test binary, for an upgrade to another file.
func nextBinary(t *testing.T) string {
	t.Helper()
	self, _ := os.Executable()
	next := filepath.Join(t.TempDir(), "berth-next")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return next
}

// TestListShowsAnExitUntilItIsRecorded: a container whose process ended
// while a child of it holds its output is listed as exiting until its exit
// is recorded (up to 2 s later), so that a daemon catching up meanwhile
// waits for the exit instead of calling it lost; once recorded, it is not
// listed, also after an upgrade, though its output is still open.
func TestListShowsAnExitUntilItIsRecorded(t *testing.T) {
	c, root := startMonitor(t)
	next := nextBinary(t)
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "held", "sleep 5 & echo $!; exit 3", false)
	t.Cleanup(func() {
		if got := readLog(t, s.req.Log.Path); len(got) > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(got[0].Line))); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	})
	listed := func() []Container {
		t.Helper()
		l, err := c.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if l := listed(); len(l) != 1 || !l[0].Exiting {
			return fmt.Errorf("listed %+v, want held as exiting", l)
		}
		return nil
	})
	if e := waitExit(t, exits, s); e.Status != 3 {
		t.Fatalf("exit %+v, want status 3", e)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("listed %+v once the exit is recorded, want none", l)
	}
	if _, err := c.Upgrade(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("listed %+v after an upgrade, want none", l)
	}
}

// TestUpgradeKeepsContainersOutputAndStatus re-executes the monitor into
// another binary while a container runs with a half-written line: same
// pid, the container still its child (its real status is recorded), the
// line whole in the log.
func TestUpgradeKeepsContainersOutputAndStatus(t *testing.T) {
	c, root := startMonitor(t)
	next := nextBinary(t)
	exits, err := c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "steady", `echo before; printf 'half a '; read x; echo line; seq 1 50000; exit 7`, true)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := readLog(t, s.req.Log.Path); len(got) < 1 {
			return errors.New("nothing logged yet")
		}
		return nil
	})
	pid := monitorPid(t, c)
	resp, err := c.Upgrade(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if resp.MonitorPid != pid {
		t.Fatalf("upgraded monitor has pid %d, was %d", resp.MonitorPid, pid)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != next {
		t.Fatalf("monitor runs %s, want %s", exe, next)
	}
	// The subscription ended with the old process; a new one is live.
	if _, ok := <-exits; ok {
		t.Fatal("exit stream outlived the upgrade")
	}
	exits, err = c.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if list, err := c.List(context.Background()); err != nil || len(list) != 1 || list[0].Pid != s.pid || list[0].Adopted {
		t.Fatalf("after upgrade: %+v %v", list, err)
	}
	if _, err := io.WriteString(s.streams.Stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, exits, s); e.Status != 7 || e.Lost {
		t.Fatalf("exit %+v: want status 7", e)
	}
	got := readLog(t, s.req.Log.Path)
	if len(got) < 2 || string(got[0].Line) != "before\n" || string(got[1].Line) != "half a line\n" {
		t.Fatalf("log starts %q", got[:min(2, len(got))])
	}
	checkSequence(t, got[2:], "stdout", 1, 50000)
}

// preparedPids reads the pids of the stages the shell runtime prepared,
// which it appends to $TEST_PREPARED.
func preparedPids(t *testing.T) []int { return recordedPids(t, "TEST_PREPARED") }

// recordedPids reads the pids the shell runtime appended to the file $env.
func recordedPids(t *testing.T, env string) []int {
	t.Helper()
	b, err := os.ReadFile(os.Getenv(env))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return pids
}

// TestSpareStageServesTheNextPrepare: after a create, the monitor starts a
// spare stage; the next prepare of a container without stdin or a
// terminal claims it, and the container runs as it, logged through its
// pipes; another spare follows once it started. A container with stdin
// gets a stage of its own. In a burst of prepares, the next spare starts
// at once, before any create. Shutdown ends the spare.
func TestSpareStageServesTheNextPrepare(t *testing.T) {
	t.Setenv("TEST_PREPARED", filepath.Join(t.TempDir(), "prepared"))
	t.Setenv("TEST_SPARES", filepath.Join(t.TempDir(), "spares"))
	t.Cleanup(func() { // after the monitor's shutdown
		deadline := time.Now().Add(5 * time.Second)
		for _, pid := range recordedPids(t, "TEST_SPARES") {
			for unix.Kill(pid, 0) != unix.ESRCH {
				if time.Now().After(deadline) {
					t.Errorf("the spare stage, pid %d, outlived the monitor's shutdown", pid)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	c, root := startMonitor(t)
	ctx := context.Background()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	spares := func(n int) []int {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids := recordedPids(t, "TEST_SPARES")
			if len(pids) >= n || time.Now().After(deadline) {
				return pids
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := spares(0); len(got) != 0 {
		t.Fatalf("spare stages %v before any create, want none", got)
	}
	exits, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := create(t, c, root, "first", "exit 0", false)
	waitExit(t, exits, first)
	spare := spares(1)
	if len(spare) != 1 {
		t.Fatalf("spare stages %v after a create, want one", spare)
	}
	if err := c.Prepare(ctx, Request{ID: "s1", Namespaces: ns}); err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "s1", "echo from the spare stage; exit 5", false)
	if s.pid != spare[0] {
		t.Fatalf("s1 runs as pid %d, not as the spare stage %d", s.pid, spare[0])
	}
	if e := waitExit(t, exits, s); e.Status != 5 {
		t.Fatalf("exit %+v, want status 5", e)
	}
	if got := readLog(t, filepath.Join(root, "s1", "log")); len(got) != 1 || string(got[0].Line) != "from the spare stage\n" {
		t.Fatalf("log %+v, want the line the spare stage printed", got)
	}
	if spare = spares(2); len(spare) != 2 {
		t.Fatalf("spare stages %v, want a second one after s1's create", spare)
	}
	if err := c.Prepare(ctx, Request{ID: "s2", Namespaces: ns, Stdin: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Discard(ctx, "s2"); err != nil { // (once its stage is started)
		t.Fatal(err)
	}
	if got := preparedPids(t); len(got) != 1 {
		t.Fatalf("prepared stages %v: want one of its own for a container with stdin", got)
	}

	// A burst: b1 claims the spare and the next spare starts at once,
	// before any create (b2 claims it, or gets a stage of its own).
	for _, id := range []string{"b1", "b2"} {
		if err := c.Prepare(ctx, Request{ID: id, Namespaces: ns}); err != nil {
			t.Fatal(err)
		}
	}
	if spare = spares(3); len(spare) < 3 {
		t.Fatalf("spare stages %v, want a third one in a burst, before any create", spare)
	}
	// (Prepares answer before they claim: b2 may claim first.)
	b1 := create(t, c, root, "b1", "exit 6", false)
	if !slices.Contains(spare[1:], b1.pid) {
		t.Fatalf("b1 runs as pid %d, not as a spare stage (%v)", b1.pid, spare[1:])
	}
	if e := waitExit(t, exits, b1); e.Status != 6 {
		t.Fatalf("exit %+v, want status 6", e)
	}
	if err := c.Discard(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
}

// TestPreparedStageIsTakenByCreateOrDiscarded: a stage prepared for a
// container becomes its first process, logged through the pipes made at
// prepare; a discarded one ends, reaped. Each container is prepared once.
func TestPreparedStageIsTakenByCreateOrDiscarded(t *testing.T) {
	t.Setenv("TEST_PREPARED", filepath.Join(t.TempDir(), "prepared"))
	c, root := startMonitor(t)
	ctx := context.Background()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if err := c.Prepare(ctx, Request{ID: "p1", Namespaces: ns}); err != nil {
		t.Fatal(err)
	}
	if err := c.Prepare(ctx, Request{ID: "p1", Namespaces: ns}); err == nil || !strings.Contains(err.Error(), "already prepared") {
		t.Fatalf("second prepare of p1: %v, want already prepared", err)
	}
	exits, err := c.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, root, "p1", "echo from the prepared stage; exit 4", false)
	if stages := preparedPids(t); len(stages) != 1 || s.pid != stages[0] {
		t.Fatalf("p1 runs as pid %d, not as its prepared stage (prepared: %v)", s.pid, stages)
	}
	if e := waitExit(t, exits, s); e.Status != 4 {
		t.Fatalf("exit %+v, want status 4", e)
	}
	if got := readLog(t, filepath.Join(root, "p1", "log")); len(got) != 1 || string(got[0].Line) != "from the prepared stage\n" {
		t.Fatalf("log %+v, want the line the prepared stage printed", got)
	}

	// With stdin: a stage of its own, not the spare p1's create left.
	if err := c.Prepare(ctx, Request{ID: "p2", Namespaces: ns, Stdin: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Discard(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	stages := preparedPids(t)
	if len(stages) != 2 {
		t.Fatalf("prepared stages %v, want two", stages)
	}
	if err := unix.Kill(stages[1], 0); err != unix.ESRCH {
		t.Fatalf("the discarded stage, pid %d, is still there (kill 0: %v)", stages[1], err)
	}
}
