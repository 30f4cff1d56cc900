package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Mode names a renderer, as --progress does.
type Mode string

const (
	ModeAuto  Mode = "auto"
	ModeTTY   Mode = "tty"
	ModePlain Mode = "plain"
	ModeJSON  Mode = "json"
	ModeQuiet Mode = "quiet"
)

// Renderer shows events to a person or a program; Close draws the final state.
type Renderer interface {
	Sink
	Close()
}

// NewRenderer returns the renderer for mode on w; auto is tty when isTTY.
func NewRenderer(mode Mode, w io.Writer, isTTY bool, title string) (Renderer, error) {
	switch mode {
	case ModeAuto, "":
		if isTTY {
			return newTTY(w, title), nil
		}
		return &plain{w: w}, nil
	case ModeTTY:
		return newTTY(w, title), nil
	case ModePlain:
		return &plain{w: w}, nil
	case ModeJSON:
		return &jsonRenderer{enc: json.NewEncoder(w)}, nil
	case ModeQuiet:
		return quiet{}, nil
	}
	return nil, fmt.Errorf("unknown progress mode %q (want auto, tty, plain, json or quiet)", mode)
}

type quiet struct{}

func (quiet) Event(Event) {}
func (quiet) Close()      {}

// plain writes one line per event that changes a resource's text, like
// docker compose --progress plain: " Container proj-web-1  Started".
type plain struct {
	mu   sync.Mutex
	w    io.Writer
	last map[string]string
}

func (p *plain) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]string{}
	}
	line := e.Text
	if e.Details != "" {
		line += " " + e.Details
	}
	if e.Total > 0 && e.Status == Working {
		// Byte counts change constantly; a plain log shows the step only.
		if p.last[e.ID] == e.Text {
			return
		}
		p.last[e.ID] = e.Text
		fmt.Fprintf(p.w, " %s  %s\n", e.ID, e.Text)
		return
	}
	if p.last[e.ID] == line {
		return
	}
	p.last[e.ID] = line
	fmt.Fprintf(p.w, " %s  %s\n", e.ID, line)
}

func (p *plain) Close() {}

type jsonRenderer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (j *jsonRenderer) Event(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

func (j *jsonRenderer) Close() {}

// tty redraws a block of lines, one per resource, as docker compose does:
//
//	[+] Running 2/2
//	 ✔ Network proj_default    Created   0.1s
//	 ✔ Container proj-web-1    Started   0.4s
type tty struct {
	mu      sync.Mutex
	w       io.Writer
	title   string
	order   []string
	state   map[string]*line
	drawn   int
	ticker  *time.Ticker
	stop    chan struct{}
	stopped sync.WaitGroup
}

type line struct {
	ev      Event
	started time.Time
	ended   time.Time
}

func newTTY(w io.Writer, title string) *tty {
	if title == "" {
		title = "Running"
	}
	t := &tty{w: w, title: title, state: map[string]*line{}, ticker: time.NewTicker(100 * time.Millisecond), stop: make(chan struct{})}
	t.stopped.Add(1)
	go func() {
		defer t.stopped.Done()
		for {
			select {
			case <-t.ticker.C:
				t.mu.Lock()
				t.draw()
				t.mu.Unlock()
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

func (t *tty) Event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.state[e.ID]
	if !ok {
		l = &line{started: e.Time}
		t.state[e.ID] = l
		t.order = append(t.order, e.ID)
	}
	l.ev = e
	if e.Status != Working {
		l.ended = e.Time
	} else {
		l.ended = time.Time{}
	}
}

func (t *tty) Close() {
	t.ticker.Stop()
	close(t.stop)
	t.stopped.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draw()
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (t *tty) draw() {
	if len(t.order) == 0 {
		return
	}
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn) // back to the top of the block
	}
	done := 0
	width := 0
	for _, id := range t.order {
		if t.state[id].ev.ParentID == "" {
			width = max(width, len(id))
		}
		if t.state[id].ev.Status != Working {
			done++
		}
	}
	fmt.Fprintf(&b, "\x1b[2K[+] %s %d/%d\n", t.title, done, len(t.order))
	now := time.Now()
	frame := spinner[int(now.UnixMilli()/100)%len(spinner)]
	for _, id := range t.order {
		l := t.state[id]
		icon := frame
		switch l.ev.Status {
		case Done:
			icon = "\x1b[32m✔\x1b[0m"
		case Warning:
			icon = "\x1b[33m!\x1b[0m"
		case Error:
			icon = "\x1b[31m✘\x1b[0m"
		}
		end := l.ended
		if end.IsZero() {
			end = now
		}
		text := l.ev.Text
		if l.ev.Total > 0 && l.ev.Status == Working {
			text += fmt.Sprintf(" %s/%s", bytesHuman(l.ev.Current), bytesHuman(l.ev.Total))
		}
		if l.ev.Details != "" {
			text += " " + l.ev.Details
		}
		indent := " "
		if l.ev.ParentID != "" {
			indent = "   "
		}
		fmt.Fprintf(&b, "\x1b[2K%s%s %-*s  %s  %.1fs\n", indent, icon, width, id, text, end.Sub(l.started).Seconds())
	}
	t.drawn = len(t.order) + 1
	io.WriteString(t.w, b.String())
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
