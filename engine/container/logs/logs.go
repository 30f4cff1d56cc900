// Package logs is the log file of one container: JSON lines in the format of
// docker's json-file driver ({"log":"...\n","stream":"stdout","time":"..."}),
// size-rotated as Compose's logging options max-size and max-file ask.
//
// One Writer appends (the monitor, which holds the container's pipes); any
// number of readers read, filter and follow (`berth logs`). A line longer
// than MaxLineSize is split into several entries, as docker does, so a
// process that never writes a newline cannot exhaust memory.
package logs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLineSize is the longest log entry; longer lines continue in the next entry.
const MaxLineSize = 16 << 10

// Entry is one line of a container's output.
type Entry struct {
	Stream string    // "stdout" or "stderr"
	Time   time.Time // when the monitor read it
	Line   []byte    // the text, with its newline if it had one
}

// Options are the rotation settings, from Compose's logging options.
type Options struct {
	MaxSize  int64 // bytes per file before rotating; 0: never rotate
	MaxFiles int   // files kept, the current one included; < 1 means 1
}

// ParseOptions reads docker's json-file options: max-size ("10m", "512k",
// "1g" or bytes) and max-file (a count).
func ParseOptions(opts map[string]string) (Options, error) {
	var o Options
	if s, ok := opts["max-size"]; ok && s != "" && s != "-1" {
		n, err := parseSize(s)
		if err != nil {
			return o, fmt.Errorf("logging option max-size %q: %w", s, err)
		}
		o.MaxSize = n
	}
	if s, ok := opts["max-file"]; ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, fmt.Errorf("logging option max-file %q: want a positive number", s)
		}
		o.MaxFiles = n
	}
	return o, nil
}

func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	s = strings.TrimSuffix(s, "b")
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("want a size such as 10m")
	}
	return int64(f * float64(mult)), nil
}
