package logs

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Writer appends entries to a container's log file, rotating it by size.
type Writer struct {
	path string
	opts Options

	mu   sync.Mutex // guards f, size and buf
	f    *os.File
	size int64
	buf  []byte
}

// OpenWriter opens (or creates) the log file at path for appending.
func OpenWriter(path string, opts Options) (*Writer, error) {
	if opts.MaxFiles < 1 {
		opts.MaxFiles = 1
	}
	w := &Writer{path: path, opts: opts}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	w.f, w.size = f, info.Size()
	return nil
}

// Write appends entries for data read from stream at t: one entry per line,
// lines over MaxLineSize split. Data must end at a line boundary or be a
// partial line the caller has no more of (at EOF or when its buffer filled).
// The file is rotated between entries, so none exceeds MaxSize unless one
// entry alone does.
func (w *Writer) Write(stream string, t time.Time, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = w.buf[:0]
	for len(data) > 0 {
		n := len(data)
		if i := indexNewline(data); i >= 0 {
			n = i + 1
		}
		if n > MaxLineSize {
			n = MaxLineSize
		}
		mark := len(w.buf)
		w.buf = appendEntry(w.buf, stream, t, data[:n])
		data = data[n:]
		if w.opts.MaxSize > 0 && w.size+int64(len(w.buf)) > w.opts.MaxSize && w.size+int64(mark) > 0 {
			if err := w.flush(w.buf[:mark]); err != nil {
				return err
			}
			if err := w.rotate(); err != nil {
				return err
			}
			w.buf = append(w.buf[:0], w.buf[mark:]...)
		}
	}
	return w.flush(w.buf)
}

// Size is the size of the log file written to now (the newest, after a
// rotation).
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

func (w *Writer) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// rotate shifts path.N-1 -> path.N ... path -> path.1 and starts a new file;
// with MaxFiles 1 the file is just emptied.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.opts.MaxFiles > 1 {
		for i := w.opts.MaxFiles - 1; i > 1; i-- {
			_ = os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
	} else if err := os.Truncate(w.path, 0); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return w.open()
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// appendEntry encodes one entry as a JSON line without reflection: the
// monitor writes every line a container prints, so this is a hot path.
func appendEntry(b []byte, stream string, t time.Time, line []byte) []byte {
	b = append(b, `{"log":"`...)
	b = appendJSONString(b, line)
	b = append(b, `","stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes s for a JSON string body; invalid UTF-8 becomes
// U+FFFD as encoding/json would make it.
func appendJSONString(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}
