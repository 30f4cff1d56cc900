package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/runtime"
	"github.com/berth-dev/berth/internal/rootid"
)

// MonitorMain is the body of `berth __berth_monitor ROOT`: the monitor of
// one state root, creating containers with the runtime as its children.
func MonitorMain(version string) {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: berth", monitor.Entry, "ROOT")
		os.Exit(2)
	}
	root := os.Args[2]
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rt, err := runtime.New(runtime.Config{
		StateDir: filepath.Join(root, "runtime"), CgroupParent: rootid.CgroupParent(root), Logger: log,
	})
	if err != nil {
		log.Error("monitor: runtime", "err", err)
		os.Exit(1)
	}
	// Spare stages that died unclaimed with a killed monitor left their
	// cgroups (on v1).
	rt.RemoveSpareCgroups()
	if err := monitor.ServeTrimmed(root, monitorRuntime{rt}, version, log, TrimMemory); err != nil {
		log.Error("monitor", "err", err)
		os.Exit(1)
	}
}

// monitorRuntime adapts the runtime to what the monitor asks of it.
type monitorRuntime struct{ rt *runtime.Runtime }

func (m monitorRuntime) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	return m.create(ctx, id, bundle, stdio, nil)
}

func (m monitorRuntime) PrepareSpare(stdio monitor.Stdio) (monitor.PreparedStage, error) {
	p, err := m.rt.PrepareSpare(runtimeIO(stdio))
	if err != nil {
		return nil, err
	}
	return preparedStage{p, stdio}, nil
}

func (p preparedStage) Claim(id string, namespaces []specs.LinuxNamespace) error {
	return p.p.Claim(id, namespaces)
}

func (m monitorRuntime) Prepare(id string, namespaces []specs.LinuxNamespace, stdio monitor.Stdio) (monitor.PreparedStage, error) {
	p, err := m.rt.Prepare(id, namespaces, runtimeIO(stdio))
	if err != nil {
		return nil, err
	}
	return preparedStage{p, stdio}, nil
}

// preparedStage is a runtime.Prepared with the stdio it was given, for a
// second attempt at create without it.
type preparedStage struct {
	p     *runtime.Prepared
	stdio monitor.Stdio
}

func (p preparedStage) Close() { p.p.Close() }

func (m monitorRuntime) CreatePrepared(ctx context.Context, id, bundle string, stage monitor.PreparedStage) (int, *os.File, error) {
	p := stage.(preparedStage)
	return m.create(ctx, id, bundle, p.stdio, p.p)
}

func runtimeIO(stdio monitor.Stdio) runtime.IO {
	return runtime.IO{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr}
}

func (m monitorRuntime) create(ctx context.Context, id, bundle string, stdio monitor.Stdio, prep *runtime.Prepared) (int, *os.File, error) {
	for attempt := 1; ; attempt++ {
		var p runtime.Process
		var err error
		if prep != nil {
			p, err = m.rt.CreatePrepared(ctx, id, bundle, prep)
			prep = nil // used or closed either way
		} else {
			p, err = m.rt.Create(ctx, id, bundle, runtimeIO(stdio))
		}
		if err == nil {
			return p.Pid, p.Console, nil
		}
		// Workaround: on a cgroup v1 host, two creates at once can race
		// on the state root's parent cpuset cgroup (one makes it, the
		// other puts a child in it before its cpus and mems are filled:
		// ENOSPC on join). The failed create left nothing behind; by the
		// next attempt the parent is filled.
		if attempt == 3 || !strings.Contains(err.Error(), "cgroup.procs: no space left on device") {
			return 0, nil, err
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
}

// Start releases a created container and returns once its process has
// exec'd. The runtime's start returns as soon as the setup stage is told
// to go; a kill that freezes the cgroup in the middle of that execve can
// catch a thread that cannot die yet, and leave the container unkillable
// (engine/runtime's v1 Kill does not thaw when its freeze times out).
//
// The monitor knows the pid (its child); the runtime's state, a record
// to decode, is read only when it does not.
func (m monitorRuntime) Start(ctx context.Context, id string, pid int) error {
	if pid <= 0 {
		if st, err := m.rt.State(ctx, id); err == nil {
			pid = st.Pid
		}
	}
	exe := ""
	if pid > 0 {
		exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		defer func() {
			if exe != "" {
				waitExec(pid, exe)
			}
		}()
	}
	err := m.rt.Start(ctx, id)
	if err != nil {
		exe = ""
	}
	return err
}

// waitExec waits (up to 5s) until pid runs another executable than exe.
func waitExec(pid int, exe string) {
	// An execve takes a millisecond or so: look often at first.
	start := time.Now()
	for delay := 50 * time.Microsecond; time.Since(start) < 5*time.Second; {
		now, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || now != exe {
			return // exec'd, or gone (its exit is reaped as usual)
		}
		time.Sleep(delay)
		if time.Since(start) > 5*time.Millisecond {
			delay = time.Millisecond
		}
	}
}
