package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestMain makes the test binary its own setup stage, as cmd/berth's main
// does for berth: Create re-executes os.Args[0] with InitEntry.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitEntry {
		Init()
	}
	if os.Getenv(helperEnv) == "create" {
		helperCreate()
	}
	code := m.Run()
	if probePath != "" {
		os.RemoveAll(filepath.Dir(probePath))
	}
	testutil.RemoveBuiltBinary()
	os.Exit(code)
}

// helperEnv makes the test binary a process that creates one container
// and exits, so that a test can kill a creator half-way:
// STATEDIR CGROUPPARENT ID BUNDLE in the arguments after "--".
const helperEnv = "BERTH_TEST_HELPER"

func helperCreate() {
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	rt, err := New(Config{StateDir: args[0], CgroupParent: args[1]})
	if err == nil {
		_, err = rt.Create(context.Background(), args[2], args[3], IO{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
