package volume

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func TestCreateIsIdempotentAndListFiltersByLabel(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Create(CreateOptions{Name: "proj_data", Labels: map[string]string{"com.docker.compose.project": "proj"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Mountpoint, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(CreateOptions{Name: "proj_data"})
	if err != nil || b.Mountpoint != a.Mountpoint {
		t.Fatalf("second create: %+v %v", b, err)
	}
	if data, _ := os.ReadFile(filepath.Join(b.Mountpoint, "f")); string(data) != "kept" {
		t.Fatal("second create lost the data")
	}
	if _, err := s.Create(CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.List(map[string]string{"com.docker.compose.project": "proj"})
	if len(got) != 1 || got[0].Name != "proj_data" {
		t.Fatalf("list by label: %+v", got)
	}
	all, _ := s.List(nil)
	if len(all) != 2 {
		t.Fatalf("list all: %d volumes", len(all))
	}
}

func TestRemoveRefusesAVolumeInUse(t *testing.T) {
	s, _ := Open(t.TempDir())
	if _, err := s.Create(CreateOptions{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("v1", []string{"web-1"}, false); !errdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	if err := s.Remove("v1", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("v1"); !errdefs.IsNotFound(err) {
		t.Fatalf("get after remove: %v", err)
	}
	if err := s.Remove("v1", nil, false); !errdefs.IsNotFound(err) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestPruneKeepsNamedAndUsedVolumes(t *testing.T) {
	s, _ := Open(t.TempDir())
	named, _ := s.Create(CreateOptions{Name: "named"})
	used, _ := s.Create(CreateOptions{})
	unused, _ := s.Create(CreateOptions{})
	removed, err := s.Prune(func(n string) bool { return n == used.Name }, nil, false)
	if err != nil || len(removed) != 1 || removed[0] != unused.Name {
		t.Fatalf("prune removed %v (%v)", removed, err)
	}
	if _, err := s.Get(named.Name); err != nil {
		t.Fatal("prune removed a named volume")
	}
}

func TestBadNamesAndOptionsAreRefused(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, name := range []string{"a", "../x", "has space", "-lead"} {
		if _, err := s.Create(CreateOptions{Name: name}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := s.Create(CreateOptions{Name: "nfs", Options: map[string]string{"type": "nfs"}}); !errdefs.IsNotImplemented(err) {
		t.Errorf("nfs options: %v", err)
	}
	dir := t.TempDir()
	v, err := s.Create(CreateOptions{Name: "bound", Options: map[string]string{"type": "none", "o": "bind", "device": dir}})
	if err != nil || v.Source() != dir {
		t.Fatalf("bind volume: %+v %v", v, err)
	}
}

func TestRepairRemovesHalfCreatedVolumes(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if err := os.MkdirAll(filepath.Join(dir, "half", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Repair()
	if err != nil || len(removed) != 1 || removed[0] != "half" {
		t.Fatalf("repair: %v %v", removed, err)
	}
}
