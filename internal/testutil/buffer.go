package testutil

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that a process (or a logger) may write
// while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls until the buffer holds want (15 seconds at most).
func (s *SyncBuffer) WaitFor(t testing.TB, want string) {
	t.Helper()
	Eventually(t, 15*time.Second, func() error {
		if got := s.String(); !strings.Contains(got, want) {
			return fmt.Errorf("no %q yet in %q", want, got)
		}
		return nil
	})
}
