// Package progress is the event stream that long operations (pull, build,
// up, down) emit and the CLI renders, as docker compose shows them: a live
// line per resource on a terminal, plain lines otherwise, JSON for tools.
//
// Library code emits Events to a Sink and never prints; the CLI picks a
// renderer for the stream it writes to. Events cross the API socket as JSON.
package progress

import "time"

// Status is where a resource's operation stands.
type Status string

const (
	Working Status = "working"
	Done    Status = "done"
	Warning Status = "warning"
	Error   Status = "error"
)

// Event is one step of one resource: "Container proj-web-1 Starting".
type Event struct {
	ID       string    `json:"id"`                  // the resource, as the user names it: "Container proj-web-1"
	ParentID string    `json:"parent_id,omitempty"` // e.g. the image a layer belongs to
	Status   Status    `json:"status"`
	Text     string    `json:"text"`              // "Creating", "Started", "Downloading"
	Details  string    `json:"details,omitempty"` // extra words: an error, "Waiting"
	Current  int64     `json:"current,omitempty"` // bytes or steps done...
	Total    int64     `json:"total,omitempty"`   // ...of this many
	Time     time.Time `json:"time"`
}

// Sink receives events. Implementations are safe for concurrent use.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Event calls f.
func (f SinkFunc) Event(e Event) { f(e) }

// Emit stamps e with the time when it has none and sends it to s (nil: dropped).
func Emit(s Sink, e Event) {
	if s == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.Event(e)
}

// WorkingEvent is a step under way.
func WorkingEvent(id, text string) Event { return Event{ID: id, Status: Working, Text: text} }

// DoneEvent is a finished step.
func DoneEvent(id, text string) Event { return Event{ID: id, Status: Done, Text: text} }

// ErrorEvent is a failed step, with the error as details.
func ErrorEvent(id string, err error) Event {
	return Event{ID: id, Status: Error, Text: "Error", Details: err.Error()}
}
