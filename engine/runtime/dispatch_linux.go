package runtime

import "os"

// init becomes the setup stage when berth was re-executed as one, before
// the rest of the program's packages are initialised.
//
// Every container start runs berth twice (the caller, then the setup
// stage), and berth links packages with costly initialisation (a JSON
// schema compiled, regular expressions built: several milliseconds). Go
// initialises packages in import-path order as soon as their own imports
// are (the language spec's rule since Go 1.21), so this package, whose
// imports are few and light, is initialised before those, and the setup
// stage never pays for them. main's hidden entry points still map
// InitEntry to Init, for a binary whose order differs.
func init() {
	if len(os.Args) > 1 && os.Args[1] == InitEntry {
		Init()
	}
}
