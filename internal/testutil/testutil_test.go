package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBusyboxRootfsRuns(t *testing.T) {
	dir := t.TempDir()
	BusyboxRootfs(t, dir)
	if _, err := os.Lstat(filepath.Join(dir, "bin", "sh")); err != nil {
		t.Fatalf("no /bin/sh applet link: %v", err)
	}
	if !isStatic(filepath.Join(dir, "bin", "busybox")) {
		t.Fatal("copied busybox is not static")
	}
}

func TestLeaksFindsAProcessUnderTheRoot(t *testing.T) {
	root := t.TempDir()
	if got := Leaks(root); len(got) != 0 {
		t.Fatalf("fresh root reports leaks: %v", got)
	}
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Kill(); _, _ = p.Wait() }()
	if got := Leaks(root); len(got) != 1 {
		t.Fatalf("want one leaked process, got %v", got)
	}
}
