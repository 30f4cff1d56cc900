package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// A container's directory is made ahead, after a start, for the next
// create: its subdirectories and the empty files that create and start
// write in place. A file system allocates an inode for each new file, and
// some do it slowly (ext4 without a journal scans past every recently
// deleted inode: up to a millisecond per file after a burst of removals);
// a create that renames a directory made ahead allocates none.
//
// Two are kept: in a burst of creates and starts (compose), the next
// create comes about a millisecond after a start answers, before another
// could be made.
//
// Directories made ahead are named with a leading dot under
// ROOT/containers, which records never are: made as .making-N, then
// renamed .ahead-N once complete. Close removes them, and Open those
// that a killed daemon left.
const (
	aheadPrefix  = ".ahead-"
	makingPrefix = ".making-"
	aheadDirs    = 2
)

// aheadFiles are the empty files of a directory made ahead, with their
// modes, as create and start write them.
var aheadFiles = []struct {
	name string
	mode os.FileMode
}{
	{"container.json", 0o600},
	{"container.log", 0o640},
	{"hostname", 0o644},
	{"hosts", 0o644},
	{"resolv.conf", 0o644},
	{filepath.Join("bundle", "config.json"), 0o600},
}

var aheadCount atomic.Uint64

// takeAheadDir makes a directory made ahead into dir; false if there is
// none, or it could not be moved.
func (m *Manager) takeAheadDir(dir string) bool {
	m.mu.Lock()
	if len(m.ahead) == 0 {
		m.mu.Unlock()
		return false
	}
	path := m.ahead[len(m.ahead)-1]
	m.ahead = m.ahead[:len(m.ahead)-1]
	m.mu.Unlock()
	if err := os.Rename(path, dir); err != nil {
		m.log.Debug("container directory made ahead", "err", err)
		_ = os.RemoveAll(path)
		return false
	}
	return true
}

// makeAheadDirs makes directories ahead for the next creates, until
// aheadDirs wait, unless they are being made.
func (m *Manager) makeAheadDirs() {
	m.mu.Lock()
	if m.makingAhead {
		m.mu.Unlock()
		return
	}
	m.makingAhead = true
	defer func() {
		m.mu.Lock()
		m.makingAhead = false
		m.mu.Unlock()
	}()
	for len(m.ahead) < aheadDirs {
		m.mu.Unlock()
		n := aheadCount.Add(1)
		making := filepath.Join(m.root, "containers", fmt.Sprintf("%s%d", makingPrefix, n))
		path := filepath.Join(m.root, "containers", fmt.Sprintf("%s%d", aheadPrefix, n))
		err := buildAheadDir(making)
		if err == nil {
			err = os.Rename(making, path)
		}
		if err != nil {
			m.log.Debug("container directory made ahead", "err", err)
			_ = os.RemoveAll(making)
			return
		}
		m.mu.Lock()
		m.ahead = append(m.ahead, path)
	}
	m.mu.Unlock()
}

// buildAheadDir makes a directory ahead at path.
func buildAheadDir(path string) error {
	for _, d := range []string{"", filepath.Join("fs", "upper"), filepath.Join("fs", "work"), filepath.Join("bundle", "rootfs")} {
		mode := os.FileMode(0o755)
		if d == "" {
			mode = 0o711
		}
		if err := os.MkdirAll(filepath.Join(path, d), mode); err != nil {
			return err
		}
	}
	for _, f := range aheadFiles {
		fd, err := os.OpenFile(filepath.Join(path, f.name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return err
		}
		fd.Close()
	}
	// Its entries are durable before any record is written in it (see
	// saveNew).
	return atomicfile.SyncDir(path)
}

// removeAheadDirs removes the directories made ahead, and those being
// made, under root.
func removeAheadDirs(root string) {
	entries, _ := os.ReadDir(filepath.Join(root, "containers"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), aheadPrefix) || strings.HasPrefix(e.Name(), makingPrefix) {
			_ = os.RemoveAll(filepath.Join(root, "containers", e.Name()))
		}
	}
}
