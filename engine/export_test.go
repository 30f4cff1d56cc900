package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/internal/testutil"
)

// exportNames exports container id and returns its tar's entries by name,
// with the content of the regular files.
func exportNames(t *testing.T, m *container.Manager, id string) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Export(context.Background(), id, &buf); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names[strings.TrimSuffix(hdr.Name, "/")] = string(b)
	}
}

// TestExportIsTheRootFilesystemWithoutVolumes exports a container that
// ran and one that runs: the image's files and the container's changes
// over them (a file added, one deleted), not what its volumes hold, and
// nothing left mounted (the engine's leak check).
func TestExportIsTheRootFilesystemWithoutVolumes(t *testing.T) {
	t.Parallel()
	e := busyboxEngine(t)
	vol := []container.Mount{{Type: container.MountVolume, Source: "exportdata", Target: "/data"}}
	script := "echo changed > /added; rm /etc/group; echo in-volume > /data/f"
	ran := start(t, e, container.Config{Cmd: []string{"sh", "-c", script}, Mounts: vol})
	if code := waitExit(t, e, ran.ID); code != 0 {
		t.Fatalf("the container exited with %d", code)
	}
	running := start(t, e, container.Config{Cmd: []string{"sh", "-c", script + "; echo ready; exec sleep 1000"}, Mounts: vol})
	testutil.Eventually(t, 10*time.Second, func() error {
		if out := logText(t, e.Containers, running.ID, logsAll); !strings.Contains(out, "stdout:ready") {
			return fmt.Errorf("not ready yet: %q", out)
		}
		return nil
	})
	for _, id := range []string{ran.ID, running.ID} {
		names := exportNames(t, e.Containers, id)
		if names["added"] != "changed\n" {
			t.Errorf("%s: the added file is %q", id[:12], names["added"])
		}
		if _, ok := names["bin/busybox"]; !ok {
			t.Errorf("%s: no bin/busybox of the image in %d entries", id[:12], len(names))
		}
		if _, ok := names["etc/group"]; ok {
			t.Errorf("%s: the deleted /etc/group is in the export", id[:12])
		}
		if _, ok := names["data/f"]; ok {
			t.Errorf("%s: the volume's file is in the export", id[:12])
		}
	}
	// The stopped one's read-only mount is gone once the export is done.
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), ran.ID) {
		t.Fatalf("a mount of the exported container stays:\n%s", b)
	}
}
