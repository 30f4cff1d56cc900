package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/term"

	"github.com/berth-dev/berth/engine/image"
)

// humanSize is a size as docker prints it: "1.24MB", "4.1kB", "0B".
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// humanSince is a time as docker prints it in listings: "2 hours ago";
// "N/A" for a zero time (images built without wall-clock times).
func humanSince(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

// dockerTime is a time as docker prints it in JSON listings.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 -0700 MST")
}

// newTable is a tabwriter with docker's table layout.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
}

// listFormat prints rows as docker's --format does: "table" (or empty)
// through table, "json" one object per line, anything else a Go template
// per row.
func listFormat[T any](w io.Writer, format string, rows []T, table func(io.Writer, []T) error) error {
	switch format {
	case "", "table":
		return table(w, rows)
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := tmpl.Execute(w, r); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// parseTemplate parses a --format template with docker's json function.
func parseTemplate(format string) (*template.Template, error) {
	format = strings.TrimPrefix(format, "table ")
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("bad --format template: %w", err)
	}
	return tmpl, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressPrinter renders progress events as --progress asks: "tty" a live
// view with one line per id (redrawn in place), "plain" a line per status
// change, "json" the events themselves, "quiet" nothing; "auto" is tty on
// a terminal, plain otherwise.
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	mode  string
	order []string          // ids in order of appearance (tty)
	lines map[string]string // id -> its current line (tty)
	last  map[string]string // id -> its last printed status (plain)
	drawn int               // lines drawn by the last redraw (tty)
	anon  int               // lines without an id so far
}

func newProgressPrinter(w io.Writer, mode string) *progressPrinter {
	if mode == "" || mode == "auto" {
		mode = "plain"
		if isTerminal(w) {
			mode = "tty"
		}
	}
	return &progressPrinter{w: w, mode: mode, lines: map[string]string{}, last: map[string]string{}}
}

// sink is the printer as an event sink.
func (p *progressPrinter) sink(e image.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case "quiet":
	case "json":
		b, _ := json.Marshal(e)
		fmt.Fprintf(p.w, "%s\n", b)
	case "tty":
		id := e.ID
		if id == "" {
			p.anon++
			id = fmt.Sprintf("\x00%d", p.anon)
		}
		if _, ok := p.lines[id]; !ok {
			p.order = append(p.order, id)
		}
		p.lines[id] = eventLine(e, true)
		p.redraw()
	default:
		// One line per change of status; progress within a status is
		// only for terminals.
		if e.ID != "" && p.last[e.ID] == e.Status {
			return
		}
		p.last[e.ID] = e.Status
		fmt.Fprintln(p.w, eventLine(e, false))
	}
}

// redraw moves the cursor up over the last drawing and prints every line again.
func (p *progressPrinter) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		b.WriteString("\x1b[2K")
		b.WriteString(p.lines[id])
		b.WriteByte('\n')
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

// eventLine is one event as docker prints it: "ID: Status [bar] cur/total".
func eventLine(e image.Event, bar bool) string {
	s := e.Status
	if e.ID != "" {
		s = e.ID + ": " + s
	}
	if bar && e.Total > 0 && e.Current > 0 {
		s += " " + progressBar(e.Current, e.Total)
	}
	return s
}

// progressBar draws docker's 50-column bar with sizes.
func progressBar(cur, total int64) string {
	const width = 50
	cur = min(cur, total)
	n := int(width * cur / total)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, humanSize(cur), humanSize(total))
}
