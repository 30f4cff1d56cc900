package main

import "github.com/berth-dev/berth/engine/runtime"

// hiddenEntryPoints maps the first argument of a re-executed berth to the
// function that plays that role. Each entry point is owned by the package
// that re-executes berth into it; the argument is its exported name.
var hiddenEntryPoints = map[string]func(){
	runtime.InitEntry: runtime.Init,
}
