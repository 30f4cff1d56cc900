package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReadOptions select what Read returns, as `logs` flags do.
type ReadOptions struct {
	Tail   int       // the last Tail entries only; < 0 for all
	Since  time.Time // entries at or after; zero for no bound
	Until  time.Time // entries before; zero for no bound
	Follow bool      // keep reading what is written until done closes
}

type rawEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// files lists the log's files oldest first: path.N ... path.1, path.
func files(path string) []string {
	var rotated []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		rotated = append(rotated, p)
	}
	out := make([]string, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		out = append(out, rotated[i])
	}
	return append(out, path)
}

// lineReader returns the complete lines of a file that is being appended to;
// a partial last line stays buffered until its newline arrives.
type lineReader struct {
	f     *os.File
	buf   []byte
	start int
}

// next returns the next complete line, or ok false when the file has no
// complete line past what was returned.
func (lr *lineReader) next() (line []byte, ok bool, err error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.start:], '\n'); i >= 0 {
			line = lr.buf[lr.start : lr.start+i+1]
			lr.start += i + 1
			return line, true, nil
		}
		if lr.start > 0 {
			n := copy(lr.buf, lr.buf[lr.start:])
			lr.buf, lr.start = lr.buf[:n], 0
		}
		if len(lr.buf) > 4*MaxLineSize+1024 {
			lr.buf = lr.buf[:0] // not a log entry: drop it rather than grow
		}
		if cap(lr.buf)-len(lr.buf) < 32<<10 {
			grown := make([]byte, len(lr.buf), 2*cap(lr.buf)+64<<10)
			copy(grown, lr.buf)
			lr.buf = grown
		}
		n, err := lr.f.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+n]
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("read log: %w", err)
		}
	}
}

// entries calls fn for every complete entry left in lr that keep accepts.
func (lr *lineReader) entries(keep func(Entry) bool, fn func(Entry) error) error {
	for {
		line, ok, err := lr.next()
		if err != nil || !ok {
			return err
		}
		var raw rawEntry
		if json.Unmarshal(line, &raw) != nil {
			continue
		}
		e := Entry{Stream: raw.Stream, Time: raw.Time, Line: []byte(raw.Log)}
		if keep(e) {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// Read calls fn for each entry of the log at path that opts selects, in the
// order written. With Follow it then waits for new entries until done is
// closed (the container stopped) or ctx ends, and returns after reading
// what was written before done closed.
func Read(ctx context.Context, path string, opts ReadOptions, done <-chan struct{}, fn func(Entry) error) error {
	keep := func(e Entry) bool {
		return (opts.Since.IsZero() || !e.Time.Before(opts.Since)) && (opts.Until.IsZero() || e.Time.Before(opts.Until))
	}
	emit := fn
	var ring []Entry
	if opts.Tail >= 0 {
		emit = func(e Entry) error {
			if opts.Tail == 0 {
				return nil
			}
			if len(ring) == opts.Tail {
				ring = ring[1:]
			}
			ring = append(ring, e)
			return nil
		}
	}
	var current *lineReader
	all := files(path)
	for i, p := range all {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		lr := &lineReader{f: f}
		if err := lr.entries(keep, emit); err != nil {
			f.Close()
			return err
		}
		if i == len(all)-1 {
			current = lr
		} else {
			f.Close()
		}
	}
	defer func() {
		if current != nil {
			current.f.Close()
		}
	}()
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	return follow(ctx, path, &current, done, keep, fn)
}

// follow reads what is appended to the log, moving to the new file when the
// writer rotates, until done closes or ctx ends.
func follow(ctx context.Context, path string, current **lineReader, done <-chan struct{}, keep func(Entry) bool, fn func(Entry) error) error {
	var wake <-chan fsnotify.Event
	if watcher, err := fsnotify.NewWatcher(); err == nil {
		defer watcher.Close()
		if watcher.Add(filepath.Dir(path)) == nil {
			wake = watcher.Events
		}
	}
	// The watcher only wakes us early; the ticker makes sure a missed
	// event costs at most its period.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	stopping := false
	for {
		if *current == nil {
			if f, err := os.Open(path); err == nil {
				*current = &lineReader{f: f}
			}
		}
		if lr := *current; lr != nil {
			if err := lr.entries(keep, fn); err != nil {
				return err
			}
			// Rotated: finish the old file, then continue with the new one.
			if a, err := lr.f.Stat(); err == nil {
				if b, err := os.Stat(path); err == nil && !os.SameFile(a, b) {
					if err := lr.entries(keep, fn); err != nil {
						return err
					}
					lr.f.Close()
					*current = nil
					continue
				}
			}
		}
		if stopping {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			stopping = true // one more pass reads the last lines
		case <-wake:
		case <-tick.C:
		}
	}
}
