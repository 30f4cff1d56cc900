package overlay_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/overlay"
	"github.com/berth-dev/berth/internal/testutil"
)

// stack makes n layers, each with a file of its own and its number in
// "top", and mounts them; the first layer is the topmost.
func stack(t *testing.T, n int) (merged string, lower []string) {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	for i := range n {
		l := filepath.Join(root, "layers", fmt.Sprintf("layer-with-a-name-as-long-as-a-digest-%03d", i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string]string{"f" + strconv.Itoa(i): "x", "top": strconv.Itoa(i)} {
			if err := os.WriteFile(filepath.Join(l, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		lower = append(lower, l)
	}
	merged, upper, work := filepath.Join(root, "merged"), filepath.Join(root, "upper"), filepath.Join(root, "work")
	for _, d := range []string{merged, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := overlay.Mount(merged, lower, upper, work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged, lower
}

func checkStack(t *testing.T, merged string, n int) {
	t.Helper()
	for i := range n {
		if _, err := os.Stat(filepath.Join(merged, "f"+strconv.Itoa(i))); err != nil {
			t.Fatalf("layer %d's file: %v", i, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(merged, "top")); err != nil || string(b) != "0" {
		t.Fatalf("top is %q (%v), want the first layer's 0", b, err)
	}
	if err := os.WriteFile(filepath.Join(merged, "new"), []byte("y"), 0o644); err != nil {
		t.Fatalf("write through the overlay: %v", err)
	}
}

func TestShallowStack(t *testing.T) {
	merged, _ := stack(t, 3)
	checkStack(t, merged, 3)
}

// TestDeepStack mounts more layers than one mount(2) call's page of
// options holds (docker's overlay2 allows 128).
func TestDeepStack(t *testing.T) {
	merged, lower := stack(t, 150)
	if n := len(strings.Join(lower, ":")); n < os.Getpagesize() {
		t.Fatalf("the layers' paths take %d bytes: the test must go past a page", n)
	}
	checkStack(t, merged, 150)
}

// TestReadOnlyStacks mounts a shallow and a deep stack with no upper
// layer: every layer shows, the topmost wins, and nothing can be written.
func TestReadOnlyStacks(t *testing.T) {
	for _, n := range []int{3, 150} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			_, lower := stack(t, n)
			ro := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(ro, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := overlay.MountReadOnly(ro, lower); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unix.Unmount(ro, unix.MNT_DETACH) })
			for i := range n {
				if _, err := os.Stat(filepath.Join(ro, "f"+strconv.Itoa(i))); err != nil {
					t.Fatalf("layer %d's file: %v", i, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(ro, "top")); err != nil || string(b) != "0" {
				t.Fatalf("top is %q (%v), want the first layer's 0", b, err)
			}
			if err := os.WriteFile(filepath.Join(ro, "new"), []byte("y"), 0o644); err == nil {
				t.Fatal("a read-only overlay took a write")
			}
		})
	}
}
