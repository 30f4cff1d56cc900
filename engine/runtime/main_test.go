package runtime

import (
	"os"
	"testing"
)

// TestMain makes the test binary its own setup stage, as cmd/berth's main
// does for berth: Create re-executes os.Args[0] with InitEntry.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitEntry {
		Init()
	}
	os.Exit(m.Run())
}
