package build

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/progress"
)

// Texts of step events, as BuildKit's plain output has them.
const (
	TextRunning = "RUNNING"
	TextCached  = "CACHED"
	TextDone    = "DONE"
	TextError   = "ERROR"
)

// steps numbers the steps of one build and sends their events: one
// resource per step, "#5 [web 2/3] RUN make", and for RUN its output as a
// child resource "#5" whose text is each line with the seconds since the
// step began ("0.215 compiling"), as `docker build --progress plain` has.
type steps struct {
	sink progress.Sink
	mu   sync.Mutex
	n    int
}

// step is one step's events.
type step struct {
	s     *steps
	id    string // "#5 [web 2/3] RUN make"
	seq   string // "#5"
	start time.Time
	out   bool // some output was sent
	last  string
}

// begin starts a step named name ("[web 2/3] RUN make").
func (s *steps) begin(name string) *step {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	seq := fmt.Sprintf("#%d", n)
	st := &step{s: s, id: seq + " " + oneLine(name), seq: seq, start: time.Now()}
	progress.Emit(s.sink, progress.Event{ID: st.id, Status: progress.Working, Text: TextRunning})
	return st
}

// output sends one line the step printed.
func (st *step) output(line string) {
	st.out = true
	st.last = fmt.Sprintf("%.3f %s", time.Since(st.start).Seconds(), line)
	progress.Emit(st.s.sink, progress.Event{ID: st.seq, ParentID: st.id, Status: progress.Working, Text: st.last})
}

func (st *step) endOutput(status progress.Status) {
	if st.out {
		progress.Emit(st.s.sink, progress.Event{ID: st.seq, ParentID: st.id, Status: status, Text: st.last})
	}
}

// cached ends the step as answered by the cache.
func (st *step) cached() {
	progress.Emit(st.s.sink, progress.Event{ID: st.id, Status: progress.Done, Text: TextCached})
}

// done ends the step, saying how long it took.
func (st *step) done() {
	st.endOutput(progress.Done)
	progress.Emit(st.s.sink, progress.Event{ID: st.id, Status: progress.Done, Text: fmt.Sprintf("%s %.1fs", TextDone, time.Since(st.start).Seconds())})
}

// fail ends the step with its error.
func (st *step) fail(err error) {
	st.endOutput(progress.Error)
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // the output was shown line by line already
	}
	progress.Emit(st.s.sink, progress.Event{ID: st.id, Status: progress.Error, Text: TextError, Details: msg})
}

// warn sends a warning that belongs to no step.
func (s *steps) warn(text string) {
	progress.Emit(s.sink, progress.Event{ID: "WARN", Status: progress.Warning, Text: text})
}

// oneLine keeps the first line of an instruction (a heredoc's body is
// not part of a step's name) and cuts it to a readable length.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}

// joinArgs shows a command as docker's error messages show it.
func joinArgs(args []string) string { return strings.Join(args, " ") }
