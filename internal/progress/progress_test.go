package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestPlainShowsEachStepOnce(t *testing.T) {
	var buf bytes.Buffer
	r, _ := NewRenderer(ModeAuto, &buf, false, "")
	Emit(r, WorkingEvent("Container p-web-1", "Creating"))
	Emit(r, WorkingEvent("Container p-web-1", "Creating"))
	Emit(r, Event{ID: "Image busybox", Status: Working, Text: "Downloading", Current: 10, Total: 100})
	Emit(r, Event{ID: "Image busybox", Status: Working, Text: "Downloading", Current: 50, Total: 100})
	Emit(r, DoneEvent("Container p-web-1", "Started"))
	r.Close()
	want := " Container p-web-1  Creating\n Image busybox  Downloading\n Container p-web-1  Started\n"
	if buf.String() != want {
		t.Fatalf("plain output:\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestJSONIsOneEventPerLine(t *testing.T) {
	var buf bytes.Buffer
	r, _ := NewRenderer(ModeJSON, &buf, true, "")
	Emit(r, DoneEvent("Network p_default", "Created"))
	r.Close()
	var e Event
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil || e.ID != "Network p_default" || e.Status != Done {
		t.Fatalf("json output %q: %v", buf.String(), err)
	}
}

func TestTTYDrawsAFinalBlock(t *testing.T) {
	var buf bytes.Buffer
	r, _ := NewRenderer(ModeTTY, &buf, false, "Running")
	Emit(r, DoneEvent("Network p_default", "Created"))
	Emit(r, DoneEvent("Container p-web-1", "Started"))
	r.Close()
	out := buf.String()
	if !strings.Contains(out, "[+] Running 2/2") || !strings.Contains(out, "Container p-web-1") {
		t.Fatalf("tty output: %q", out)
	}
}

func TestUnknownModeIsAnError(t *testing.T) {
	if _, err := NewRenderer("fancy", &bytes.Buffer{}, false, ""); err == nil {
		t.Fatal("no error for an unknown mode")
	}
}
