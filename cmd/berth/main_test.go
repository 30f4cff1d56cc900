package main

import (
	"os"
	"testing"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestMain removes what the package's tests share and make once per
// process: the busybox tree of imagetest, a berth binary built without
// $BERTH_BINARY.
func TestMain(m *testing.M) {
	code := m.Run()
	imagetest.Cleanup()
	testutil.RemoveBuiltBinary()
	os.Exit(code)
}
