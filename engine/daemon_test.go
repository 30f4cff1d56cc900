package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// daemonProc is a real `berth daemon` serving a test's root, which the
// test can SIGKILL, restart, and replace by another binary.
type daemonProc struct {
	t      *testing.T
	bin    string
	root   string
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
	client *api.Client
}

func socketOf(root string) string { return "unix://" + filepath.Join(root, "berth.sock") }

// startDaemon runs bin as the daemon of root, with env added to its
// environment, and waits until it answers.
func startDaemon(t *testing.T, bin, root, logPath string, env ...string) *daemonProc {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "daemon", "--root", root, "--host", socketOf(root))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, bin: bin, root: root, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	if d.client, err = api.NewClient(socketOf(root)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		select {
		case <-d.exited:
			t.Fatalf("daemon exited at start:\n%s", d.logText())
		default:
		}
		return d.client.Ping(context.Background())
	})
	return d
}

func (d *daemonProc) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// kill9 kills the daemon with SIGKILL, as a crash would.
func (d *daemonProc) kill9() {
	d.t.Helper()
	_ = d.cmd.Process.Kill()
	d.waitGone()
}

// stop ends the daemon cleanly (SIGTERM).
func (d *daemonProc) stop() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitGone()
}

func (d *daemonProc) waitGone() {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatal("daemon did not exit")
	}
	d.client.Close()
}

// cleanupDaemon removes every container of the last daemon and stops it
// (which stops the idle monitor), so the root's leak check sees nothing.
func cleanupDaemon(t *testing.T, last **daemonProc) {
	t.Cleanup(func() {
		d := *last
		if d == nil {
			return
		}
		select {
		case <-d.exited:
			d = startDaemon(t, d.bin, d.root, d.log)
		default:
		}
		ctx := context.Background()
		cs, _ := d.client.Containers().List(ctx, container.ListOptions{All: true})
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.client.Containers().Remove(ctx, c.ID, container.RemoveOptions{Force: true, Volumes: true}); err != nil {
					t.Errorf("cleanup: remove %s: %v", c.Name, err)
				}
			}()
		}
		wg.Wait()
		nets, _ := d.client.Networks().List(ctx, nil)
		for _, n := range nets {
			_ = d.client.Networks().Remove(ctx, n.Name)
		}
		d.stop()
		testutil.Eventually(t, 15*time.Second, func() error {
			if leaks := testutil.Leaks(d.root); len(leaks) > 0 {
				return fmt.Errorf("still there: %v", leaks)
			}
			return nil
		})
	})
}

// importBusybox makes the busybox image through the daemon's API.
func importBusybox(t *testing.T, d *daemonProc) {
	t.Helper()
	layer, _ := imagetest.BusyboxLayer(t)
	_, err := d.client.Images().Import(context.Background(), bytes.NewReader(layer), image.ImportOptions{
		Reference: "busybox",
		Config:    v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// busyboxDaemon starts a daemon on a fresh state root, with the busybox
// image; the daemon last in *last is cleaned up at the end (cleanupDaemon).
func busyboxDaemon(t *testing.T, last **daemonProc) *daemonProc {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t) // its cleanup runs after cleanupDaemon's
	cleanupDaemon(t, last)
	d := startDaemon(t, testutil.BerthBinary(t), root, filepath.Join(t.TempDir(), "daemon.log"))
	importBusybox(t, d)
	return d
}

// restart starts the daemon of d's root again, with env added.
func (d *daemonProc) restart(env ...string) *daemonProc {
	d.t.Helper()
	return startDaemon(d.t, d.bin, d.root, d.log, env...)
}

// runAll creates and starts cfgs through the API, eight at a time.
func runAll(t *testing.T, d *daemonProc, cfgs []container.Config) []container.Container {
	t.Helper()
	out := make([]container.Container, len(cfgs))
	errs := make([]error, len(cfgs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	ctx := context.Background()
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := d.client.Containers().Create(ctx, cfg)
			if err == nil {
				err = d.client.Containers().Start(ctx, c.ID)
			}
			if err == nil {
				c, err = d.client.Containers().Inspect(ctx, c.ID)
			}
			out[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiLines is a container's log lines of stdout, through the API.
func apiLines(t *testing.T, d *daemonProc, id string) []string {
	t.Helper()
	var lines []string
	err := d.client.Containers().Logs(context.Background(), id, api.LogsOptions{Tail: "all"}, func(e api.LogEntry) error {
		if e.Stream == "stdout" {
			lines = append(lines, strings.TrimRight(e.Line, "\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestLiveRestoreAfterKill9 is the live-restore test: kill -9 the
// daemon while 50 containers run, start it again, and every container
// still runs, no log line is lost, containers that exited meanwhile show
// their real exit code, and restart policies carry on.
func TestLiveRestoreAfterKill9(t *testing.T) {
	t.Parallel()
	var d *daemonProc
	d = busyboxDaemon(t, &d)

	ctl := t.TempDir()
	mount := []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}}
	const counters, enders, restarters = 44, 3, 3
	var cfgs []container.Config
	for i := range counters {
		cfg := container.Config{Name: fmt.Sprintf("counter%02d", i), Image: "busybox", Cmd: counterScript(20000), NetworkMode: "none"}
		if i < 4 {
			cfg.NetworkMode = "" // a few on the default bridge: sandboxes and DNS survive too
		}
		cfgs = append(cfgs, cfg)
	}
	for i := range enders {
		cfgs = append(cfgs, container.Config{Name: fmt.Sprintf("ender%d", i), Image: "busybox", NetworkMode: "none", Mounts: mount,
			Cmd: []string{"sh", "-c", fmt.Sprintf("while [ ! -f /ctl/end%d ]; do usleep 10000; done; exit %d", i, 10+i)}})
	}
	for i := range restarters {
		cfgs = append(cfgs, container.Config{Name: fmt.Sprintf("restarter%d", i), Image: "busybox", NetworkMode: "none", Mounts: mount,
			RestartPolicy: container.RestartPolicy{Name: "on-failure"},
			Cmd:           []string{"sh", "-c", fmt.Sprintf("echo run; while [ ! -f /ctl/again%d ]; do usleep 10000; done; rm /ctl/again%d; exit 1", i, i)}})
	}
	before := runAll(t, d, cfgs)
	byName := map[string]container.Container{}
	for _, c := range before {
		byName[c.Name] = c
	}
	seen := map[string]int{}
	testutil.Eventually(t, 30*time.Second, func() error {
		for i := range counters {
			c := byName[fmt.Sprintf("counter%02d", i)]
			if n := checkCounter(t, c.Name, apiLines(t, d, c.ID)); n < 5 {
				return fmt.Errorf("%s: %d lines", c.Name, n)
			} else {
				seen[c.Name] = n
			}
		}
		return nil
	})

	d.kill9()
	// No daemon: the counters go on logging, the enders and the
	// restarters end.
	for i := range enders {
		if err := os.WriteFile(filepath.Join(ctl, fmt.Sprintf("end%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range restarters {
		if err := os.WriteFile(filepath.Join(ctl, fmt.Sprintf("again%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		var errs []error
		for name, c := range byName {
			if strings.HasPrefix(name, "ender") || strings.HasPrefix(name, "restarter") {
				errs = append(errs, gone(c.State.Pid))
			}
		}
		first := byName["counter00"]
		if info, err := os.Stat(first.LogPath); err != nil || info.Size() == 0 {
			errs = append(errs, fmt.Errorf("counter00's log: %v", err))
		}
		return errors.Join(errs...)
	})
	grown := byName["counter00"]
	sizeDead, _ := os.Stat(grown.LogPath)
	testutil.Eventually(t, 10*time.Second, func() error {
		if now, _ := os.Stat(grown.LogPath); now.Size() <= sizeDead.Size() {
			return errors.New("no line logged while the daemon is dead")
		}
		return nil
	})

	d = d.restart()
	ctx := context.Background()
	for name, c := range byName {
		got, err := d.client.Containers().Inspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(name, "counter"):
			if got.State.Status != container.Running || got.State.Pid != c.State.Pid {
				t.Errorf("%s after the restart: %+v, want running as pid %d", name, got.State, c.State.Pid)
			}
		case strings.HasPrefix(name, "ender"):
			want := 10 + int(name[len(name)-1]-'0')
			if got.State.Status != container.Exited || got.State.ExitCode != want || got.State.Error != "" {
				t.Errorf("%s after the restart: %+v, want exited with %d", name, got.State, want)
			}
		}
	}
	for i := range restarters {
		c := byName[fmt.Sprintf("restarter%d", i)]
		testutil.Eventually(t, 20*time.Second, func() error {
			got, err := d.client.Containers().Inspect(ctx, c.ID)
			if err != nil {
				return err
			}
			if got.State.Status != container.Running || got.RestartCount != 1 || got.State.Pid == c.State.Pid {
				return fmt.Errorf("%s: %s after %d restarts (%+v); daemon log:\n%s", c.Name, got.State.Status, got.RestartCount, got.State, d.logText())
			}
			return nil
		})
	}
	// Every counter's log: no line lost, none repeated, and more than
	// before the kill.
	testutil.Eventually(t, 20*time.Second, func() error {
		for i := range counters {
			c := byName[fmt.Sprintf("counter%02d", i)]
			if n := checkCounter(t, c.Name, apiLines(t, d, c.ID)); n <= seen[c.Name]+5 {
				return fmt.Errorf("%s: %d lines, had %d before the kill", c.Name, n, seen[c.Name])
			}
		}
		return nil
	})
	// And the policy goes on under the new daemon.
	r := byName["restarter0"]
	if err := os.WriteFile(filepath.Join(ctl, "again0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		got, err := d.client.Containers().Inspect(ctx, r.ID)
		if err != nil || got.RestartCount != 2 || got.State.Status != container.Running {
			return fmt.Errorf("restarter0: %+v %d %v", got.State, got.RestartCount, err)
		}
		return nil
	})
}

// TestDaemonUpgradeKeepsContainers replaces the daemon by a new binary
// while containers run: the new daemon upgrades the monitor in place
// (same pid, new executable), no container restarts, no line is lost,
// and exec and new containers work under the new binary.
func TestDaemonUpgradeKeepsContainers(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	built := testutil.BerthBinary(t)
	dir := t.TempDir()
	oldBin, newBin := filepath.Join(dir, "berth-1"), filepath.Join(dir, "berth-2")
	for _, p := range []string{oldBin, newBin} {
		b, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := testutil.StateRoot(t)
	logPath := filepath.Join(dir, "daemon.log")
	var d *daemonProc
	cleanupDaemon(t, &d)
	d = startDaemon(t, oldBin, root, logPath)
	importBusybox(t, d)
	cs := runAll(t, d, []container.Config{
		{Name: "c1", Image: "busybox", Cmd: counterScript(10000), NetworkMode: "none"},
		{Name: "c2", Image: "busybox", Cmd: counterScript(10000)},
	})
	mon := monitorPidOf(t, root)
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := len(apiLines(t, d, cs[0].ID)); n < 5 {
			return fmt.Errorf("%d lines", n)
		}
		return nil
	})
	d.stop()
	d = startDaemon(t, newBin, root, logPath)
	if pid := monitorPidOf(t, root); pid != mon {
		t.Fatalf("monitor pid %d after the upgrade, was %d", pid, mon)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", mon)); exe != newBin {
		t.Fatalf("monitor runs %s, want %s", exe, newBin)
	}
	ctx := context.Background()
	for _, c := range cs {
		got, err := d.client.Containers().Inspect(ctx, c.ID)
		if err != nil || got.State.Status != container.Running || got.State.Pid != c.State.Pid {
			t.Fatalf("%s after the upgrade: %+v %v", c.Name, got.State, err)
		}
		checkCounter(t, c.Name, apiLines(t, d, c.ID))
	}
	id, err := d.client.Containers().CreateExec(ctx, cs[1].ID, container.ExecConfig{Cmd: []string{"sh", "-c", "exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.client.Containers().StartExec(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	_ = api.Demux(conn, nil, nil)
	conn.Close()
	if st, err := d.client.Containers().InspectExec(ctx, id); err != nil || st.ExitCode == nil || *st.ExitCode != 7 {
		t.Fatalf("exec after the upgrade: %+v %v", st, err)
	}
	fresh := runAll(t, d, []container.Config{{Name: "c3", Image: "busybox", Cmd: []string{"sh", "-c", "exit 3"}, NetworkMode: "none"}})
	if code, err := d.client.Containers().Wait(ctx, fresh[0].ID); err != nil || code != 3 {
		t.Fatalf("a new container after the upgrade: %d %v", code, err)
	}
	if !strings.Contains(d.logText(), "monitor upgraded") {
		t.Errorf("the daemon's log does not tell of the upgrade:\n%s", d.logText())
	}
}

// TestCrashMidCreateAndMidStartIsCleanedUp kills the daemon (failpoints)
// in the middle of a create and in the middle of a start: the restarted
// daemon removes what the crash left of the create, takes over the run
// of the start (its process had started), says so in its log, and the
// container runs to its end.
func TestCrashMidCreateAndMidStartIsCleanedUp(t *testing.T) {
	t.Parallel()
	var d *daemonProc
	d = busyboxDaemon(t, &d)
	d.stop()
	ctx := context.Background()

	d = d.restart("BERTH_FAILPOINTS=container/create-before-record=kill")
	if _, err := d.client.Containers().Create(ctx, container.Config{Name: "half", Image: "busybox", Mounts: []container.Mount{{Type: container.MountVolume, Target: "/anon"}}}); err == nil {
		t.Fatal("create survived its failpoint")
	}
	d.waitGone()
	entries, _ := os.ReadDir(filepath.Join(d.root, "containers"))
	if len(entries) != 1 {
		t.Fatalf("the crash left %d container dirs, want 1 half-made", len(entries))
	}
	d = d.restart()
	if entries, _ := os.ReadDir(filepath.Join(d.root, "containers")); len(entries) != 0 {
		t.Fatalf("after restart %d container dirs remain", len(entries))
	}
	if vols, _ := d.client.Volumes().List(ctx, api.VolumeListOptions{}); len(vols) != 0 {
		t.Fatalf("the half-made container's anonymous volume remains: %+v", vols)
	}
	if !strings.Contains(d.logText(), "removing a container that a crash left half-created") {
		t.Fatalf("the daemon's log does not say it cleaned up:\n%s", d.logText())
	}
	ctl := t.TempDir()
	c, err := d.client.Containers().Create(ctx, container.Config{Name: "cut", Image: "busybox", NetworkMode: "none",
		Mounts: []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}},
		Cmd:    []string{"sh", "-c", "while [ ! -f /ctl/go ]; do usleep 10000; done; exit 5"}})
	if err != nil {
		t.Fatal(err)
	}
	d.stop()

	d = d.restart("BERTH_FAILPOINTS=container/after-monitor-create=kill")
	if err := d.client.Containers().Start(ctx, c.ID); err == nil {
		t.Fatal("start survived its failpoint")
	}
	d.waitGone()
	// The process had started: a start answers before it saves the
	// record, and the restarted daemon takes the run over.
	d = d.restart()
	if !strings.Contains(d.logText(), "adopting a container process whose start a crash left unrecorded") {
		t.Fatalf("the daemon's log does not say it adopted the cut start:\n%s", d.logText())
	}
	got, err := d.client.Containers().Inspect(ctx, c.ID)
	if err != nil || got.State.Status != container.Running {
		t.Fatalf("after the cut start: %+v %v, want running", got.State, err)
	}
	if err := d.client.Containers().Start(ctx, c.ID); err != nil { // a no-op
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, err := d.client.Containers().Wait(ctx, c.ID); err != nil || code != 5 {
		t.Fatalf("start after the crash: %d %v", code, err)
	}
}

// TestDaemonStartsWhileTheLastMonitorEnds: a daemon that stops with no
// container running ends the monitor; a daemon started at that moment
// finds a monitor that is ending but still there (here for 500 ms, a
// failpoint), and must wait for it to go and start another, not fail.
func TestDaemonStartsWhileTheLastMonitorEnds(t *testing.T) {
	t.Parallel()
	var d *daemonProc
	d = busyboxDaemon(t, &d)
	d.stop() // its monitor ends: the next one gets the failpoint
	d = d.restart("BERTH_FAILPOINTS=monitor/shutdown=sleep(500ms)")
	ending := monitorPidOf(t, d.root)
	d.stop()
	d = d.restart()
	c, err := d.client.Containers().Create(context.Background(), container.Config{Name: "after", Image: "busybox", NetworkMode: "none", Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.Containers().Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	if code, err := d.client.Containers().Wait(context.Background(), c.ID); err != nil || code != 0 {
		t.Fatalf("wait: %d %v", code, err)
	}
	// It did not take the ending monitor for one that serves (and lose it).
	testutil.Eventually(t, 10*time.Second, func() error { return gone(ending) })
	if pid := monitorPidOf(t, d.root); pid == ending || strings.Contains(d.logText(), "lost the monitor's exit stream") {
		t.Fatalf("the daemon connected to the ending monitor %d (now %d):\n%s", ending, pid, d.logText())
	}
}

// TestCrashMidRestartIsAdopted kills the daemon (failpoint) in the middle
// of a restart of the restart policy, after the monitor started the new
// run and before the record says so: the restarted daemon takes the new
// run over (it does not stop it and restart once more), says so in its
// log, and the restart policy goes on.
func TestCrashMidRestartIsAdopted(t *testing.T) {
	t.Parallel()
	var d *daemonProc
	d = busyboxDaemon(t, &d)
	ctx := context.Background()
	ctl := t.TempDir()
	// Each run counts itself in /ctl/runs; the first waits for /ctl/go and
	// fails, the next ones run on.
	script := `echo run >> /ctl/runs; if [ "$(wc -l < /ctl/runs)" -gt 1 ]; then exec sleep 1000; fi; while [ ! -f /ctl/go ]; do usleep 10000; done; exit 3`
	c := runAll(t, d, []container.Config{{Name: "restarter", Image: "busybox", NetworkMode: "none",
		RestartPolicy: container.RestartPolicy{Name: "on-failure"},
		Mounts:        []container.Mount{{Type: container.MountBind, Source: ctl, Target: "/ctl"}},
		Cmd:           []string{"sh", "-c", script}}})[0]
	d.stop()

	d = d.restart("BERTH_FAILPOINTS=container/after-monitor-create=kill")
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitGone() // at the restart's failpoint
	d = d.restart()
	if !strings.Contains(d.logText(), "adopting a container process whose start a crash left unrecorded") {
		t.Fatalf("the daemon's log does not say it adopted the cut restart:\n%s", d.logText())
	}
	got, err := d.client.Containers().Inspect(ctx, c.ID)
	if err != nil || got.State.Status != container.Running {
		t.Fatalf("after the cut restart: %+v %v, want running", got.State, err)
	}
	time.Sleep(300 * time.Millisecond) // time for a restart too many, if any
	if runs, _ := os.ReadFile(filepath.Join(ctl, "runs")); strings.Count(string(runs), "run") != 2 {
		t.Fatalf("%d runs, want 2: the first and its restart, taken over", strings.Count(string(runs), "run"))
	}
}
