package main

import (
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/runtime"
)

// hiddenEntryPoints maps the first argument of a re-executed berth to the
// function that plays that role. Each entry point is owned by the package
// that re-executes berth into it; the argument is its exported name.
// Every entry must stay: the daemon re-executes berth as the monitor, the
// runtime as each container's setup stage.
var hiddenEntryPoints = map[string]func(){
	runtime.InitEntry: runtime.Init,
	monitor.Entry:     func() { container.MonitorMain(version) },
	// berth-init, in front of the process of an `init: true` container.
	container.InitEntry: container.InitMain,
}
