package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

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
	if err := monitor.Serve(root, monitorRuntime{rt}, version, log); err != nil {
		log.Error("monitor", "err", err)
		os.Exit(1)
	}
}

// monitorRuntime adapts the runtime to what the monitor asks of it.
type monitorRuntime struct{ rt *runtime.Runtime }

func (m monitorRuntime) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, *os.File, error) {
	p, err := m.rt.Create(ctx, id, bundle, runtime.IO{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr})
	if err != nil {
		return 0, nil, err
	}
	return p.Pid, p.Console, nil
}

func (m monitorRuntime) Start(ctx context.Context, id string) error { return m.rt.Start(ctx, id) }
