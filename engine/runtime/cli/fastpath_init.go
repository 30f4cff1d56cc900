package cli

import "os"

// init runs `berth runtime VERB` before berth's other packages are
// initialised (see the package doc and engine/runtime's own init, which
// does the same for the setup stage). Package initialisation follows
// import paths in order as imports become ready, so this package, whose
// imports are light, runs well before the heavy ones.
func init() {
	if code, ok := FastPath(os.Args); ok {
		os.Exit(code)
	}
}
