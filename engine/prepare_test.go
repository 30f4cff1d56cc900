package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/logs"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/internal/spreaddirs"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestCreatedContainerStartsWhateverCameBetween: create starts a
// container's setup stage ahead of its start (a prepared stage, in the
// monitor). Whatever comes between create and start (the container's
// removal, a daemon restart, the monitor killed or upgraded), the start
// is as it would have been, and nothing of a prepared stage is left
// behind (the state root's leak check: processes, cgroups, mounts).
func TestCreatedContainerStartsWhateverCameBetween(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	ctx := context.Background()
	create := func(name, network string) container.Container {
		t.Helper()
		c, err := r.Containers.Create(ctx, container.Config{Name: name, Image: "busybox", NetworkMode: network,
			Cmd: []string{"sh", "-c", "echo started; ip -o -4 addr show | grep -c inet; echo $$"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Its output: that it started, its IPv4 addresses (lo alone with
	// network none, lo and eth0 on a bridge), and its pid: 1, in a pid
	// namespace of its own.
	check := func(c container.Container, addrs int) {
		t.Helper()
		if err := r.Containers.Start(ctx, c.ID); err != nil {
			t.Fatalf("start %s: %v", c.Name, err)
		}
		if code := waitExit(t, r.Engine, c.ID); code != 0 {
			t.Fatalf("%s exited %d: %q", c.Name, code, logText(t, r.Containers, c.ID, logs.ReadOptions{Tail: -1}))
		}
		got := strings.Join(logLines(t, r.Containers, c.ID, "stdout"), "|")
		if want := fmt.Sprintf("started|%d|1", addrs); got != want {
			t.Fatalf("%s printed %q, want %q", c.Name, got, want)
		}
	}

	// Started at once, as compose does: on a bridge (the stage enters the
	// network's namespace at start) and with none.
	check(create("bridged", ""), 2)
	check(create("alone", "none"), 1)

	// Removed without a start.
	removed := create("removed", "none")
	if err := r.Containers.Remove(ctx, removed.ID, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}

	// Across a daemon restart.
	restarted := create("restarted", "")
	r.reopen("")
	check(restarted, 2)

	// Across the monitor's death: its stages die with it.
	orphaned := create("orphaned", "none")
	orphanedRemoved := create("orphaned-removed", "none")
	old := monitorPidOf(t, r.Root)
	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if err := gone(old); err != nil {
			return err
		}
		resp, err := monitor.NewClient(r.Root).Ping(ctx)
		if err == nil && resp.MonitorPid == old {
			err = fmt.Errorf("the killed monitor still answers")
		}
		return err
	})
	check(orphaned, 1)
	if err := r.Containers.Remove(ctx, orphanedRemoved.ID, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}

	// Across a monitor upgrade, which ends the stages it prepared.
	upgraded := create("upgraded", "none")
	r.reopen(copyBinary(t, "berth-upgraded"))
	check(upgraded, 1)
}

// TestCreateTakesADirectoryMadeAhead: after a start, the next creates'
// directories are made ahead, two of them (their files too, so that
// create and start allocate no inode); a create takes one. A daemon that
// stops removes them. A crash between taking one and writing the record
// into it leaves a half-created container, which a restart removes, with
// the directories made ahead that a killed daemon left.
func TestCreateTakesADirectoryMadeAhead(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	ctx := context.Background()
	containers := filepath.Join(r.Root, "containers")
	ahead := func() map[uint64]string {
		t.Helper()
		var found []string
		testutil.Eventually(t, 10*time.Second, func() error {
			found, _ = filepath.Glob(filepath.Join(containers, ".ahead-*"))
			if len(found) != 2 {
				return fmt.Errorf("directories made ahead: %v, want two", found)
			}
			return nil
		})
		dirs := map[uint64]string{}
		for _, dir := range found {
			dirs[inode(t, dir)] = dir
		}
		return dirs
	}
	run := func(name string) container.Container {
		t.Helper()
		c, err := r.Containers.Create(ctx, container.Config{Name: name, Image: "busybox", NetworkMode: "none", Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Containers.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if found, _ := filepath.Glob(filepath.Join(containers, ".ahead-*")); len(found) != 0 {
		t.Fatalf("directories made ahead before any start: %v", found)
	}
	run("first")
	made := ahead()
	second := run("second")
	if got := inode(t, filepath.Join(containers, second.ID)); made[got] == "" {
		t.Fatalf("the second container's directory is inode %d, not one made ahead (%v)", got, made)
	}
	if code := waitExit(t, r.Engine, second.ID); code != 0 {
		t.Fatalf("second exited %d", code)
	}

	// A create that took a directory and crashed before its record, with
	// other directories made ahead left.
	run("third")
	var dir string
	for _, dir = range ahead() {
		break
	}
	crashed := filepath.Join(containers, strings.Repeat("c", 64))
	if err := os.Rename(dir, crashed); err != nil {
		t.Fatal(err)
	}
	// A daemon that stops removes the directories it made ahead; one
	// that is killed leaves them (and one being made), for the next.
	if err := r.Engine.Close(); err != nil {
		t.Fatal(err)
	}
	r.Engine = nil
	// Errors, not fatal, until an engine is open again: the cleanup needs
	// one to end the monitor.
	if found, _ := filepath.Glob(filepath.Join(containers, ".ahead-*")); len(found) != 0 {
		t.Errorf("directories made ahead survived the daemon's stop: %v", found)
	}
	for _, left := range []string{".ahead-1000", ".making-1001"} {
		if err := os.Mkdir(filepath.Join(containers, left), 0o711); err != nil {
			t.Error(err)
		}
	}
	r.Engine = enginetest.OpenRoot(t, r.root, "")
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Fatalf("the half-created container's directory is still there: %v", err)
	}
	for _, pattern := range []string{".ahead-*", ".making-*"} {
		if found, _ := filepath.Glob(filepath.Join(containers, pattern)); len(found) != 0 {
			t.Fatalf("directories made ahead survived a restart: %v", found)
		}
	}
	for _, c := range []container.Container{second} {
		if _, err := r.Containers.Get(c.ID); err != nil {
			t.Fatalf("%s after the restart: %v", c.Name, err)
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestStateDirectoriesAreSpread checks that the directories whose
// subdirectories come and go (one per container, volume, snapshot, build
// step) carry the top-directory flag where the file system has it: on ext4
// without a journal, a group full of recently removed inodes makes every
// new file slow (see spreaddirs).
func TestStateDirectoriesAreSpread(t *testing.T) {
	t.Parallel()
	r := newReopenable(t, "")
	var st unix.Statfs_t
	if err := unix.Statfs(r.Root, &st); err != nil {
		t.Fatal(err)
	}
	const extMagic = 0xEF53
	for _, dir := range []string{"containers", "runtime", "volumes", "image/snapshots", "image/tmp", "build/tmp"} {
		marked, err := spreaddirs.Marked(filepath.Join(r.Root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if st.Type == extMagic && !marked {
			t.Errorf("%s has no top-directory flag on ext4", dir)
		}
	}
	if st.Type != extMagic {
		t.Logf("state root on a file system of magic %#x: no flag to check", st.Type)
	}
}
