package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/containerd/errdefs"
)

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers with err's class as the status and its text as the body.
func WriteError(w http.ResponseWriter, err error) {
	WriteJSON(w, StatusOf(err), ErrorBody{Message: err.Error()})
}

// DecodeJSON reads a JSON request body into v; a malformed body is an
// invalid-argument error.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<20))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("decode request body: %v", err))
	}
	return nil
}

// StreamWriter writes a streamed answer line by line, flushing each one so
// the client sees progress as it happens. It is safe for concurrent use.
type StreamWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	flusher http.Flusher
	started bool
	done    bool
}

// NewStreamWriter starts a streamed answer on w.
func NewStreamWriter(w http.ResponseWriter) *StreamWriter {
	f, _ := w.(http.Flusher)
	return &StreamWriter{w: w, enc: json.NewEncoder(w), flusher: f}
}

func (s *StreamWriter) write(m StreamMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	if m.Kind != "event" {
		s.done = true
	}
	if err := s.enc.Encode(m); err != nil {
		return err
	}
	if s.flusher != nil {
		s.flusher.Flush()
	}
	return nil
}

// Event sends one progress event.
func (s *StreamWriter) Event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(StreamMessage{Kind: "event", Event: b})
}

// Finish ends the stream with the operation's result or its error.
func (s *StreamWriter) Finish(result any, err error) {
	if err != nil {
		_ = s.write(StreamMessage{Kind: "error", Error: err.Error(), Status: StatusOf(err)})
		return
	}
	var b json.RawMessage
	if result != nil {
		b, _ = json.Marshal(result)
	}
	_ = s.write(StreamMessage{Kind: "result", Result: b})
}
