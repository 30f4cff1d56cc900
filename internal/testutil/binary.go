package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// RemoveBuiltBinary removes the binary BerthBinary built, if it did: a
// TestMain calls it once the tests ran.
func RemoveBuiltBinary() {
	if binaryPath != "" && os.Getenv("BERTH_BINARY") == "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
}

// BerthBinary returns the path of a berth binary built from this tree:
// $BERTH_BINARY when set (make test sets it), else one built once per test
// process into a temporary directory.
func BerthBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BINARY"); p != "" {
		return p
	}
	binaryOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		moduleRoot := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", binaryPath, "./cmd/berth")
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = &buildError{out: string(out), err: err}
		}
	})
	if binaryErr != nil {
		t.Fatalf("build berth: %v", binaryErr)
	}
	return binaryPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
