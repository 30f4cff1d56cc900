package flock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestExclusiveWaitsForAForkedChild is the case it is for: the holder
// closes its lock while a child it forked still has the descriptor; the
// lock is free once the child is gone.
func TestExclusiveWaitsForAForkedChild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	holder := open(t, path)
	if err := Exclusive(holder, 0); err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "0.3")
	child.ExtraFiles = []*os.File{holder}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	holder.Close()
	next := open(t, path)
	if err := Exclusive(next, 0); !errors.Is(err, ErrHeld) {
		t.Fatalf("without a wait, while the child holds it: %v, want ErrHeld", err)
	}
	if err := Exclusive(next, 10*time.Second); err != nil {
		t.Fatalf("with a wait: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestExclusiveGivesUpWhileHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	if err := Exclusive(open(t, path), 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Exclusive(open(t, path), 50*time.Millisecond); !errors.Is(err, ErrHeld) {
		t.Fatalf("a lock another open file holds: %v, want ErrHeld", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the wait was over", waited)
	}
}
