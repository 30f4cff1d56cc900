package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func collect(t *testing.T, path string, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, opts, nil, func(e Entry) error {
		got = append(got, e.Stream+":"+string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEntriesAreDockerJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := w.Write("stdout", ts, []byte("a \"quoted\" <tag>\tx\n\xffend\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 entries, got %q", b)
	}
	var e struct {
		Log, Stream string
		Time        time.Time
	}
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatalf("not JSON: %s: %v", lines[0], err)
	}
	if e.Log != "a \"quoted\" <tag>\tx\n" || e.Stream != "stdout" || !e.Time.Equal(ts) {
		t.Fatalf("entry %+v", e)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Log != "\ufffdend\n" {
		t.Fatalf("invalid UTF-8 not replaced: %q %v", e.Log, err)
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := OpenWriter(path, Options{})
	long := strings.Repeat("x", MaxLineSize*2+10) + "\n"
	if err := w.Write("stderr", time.Now(), []byte(long)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := collect(t, path, ReadOptions{Tail: -1})
	if len(got) != 3 || strings.Join(got, "") != "stderr:"+long[:MaxLineSize]+"stderr:"+long[MaxLineSize:2*MaxLineSize]+"stderr:"+long[2*MaxLineSize:] {
		t.Fatalf("got %d entries", len(got))
	}
}

func TestRotationKeepsMaxFilesAndReadsInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := OpenWriter(path, Options{MaxSize: 1000, MaxFiles: 3})
	for i := range 200 {
		if err := w.Write("stdout", time.Now(), fmt.Appendf(nil, "line %03d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatalf("a fourth file exists with max-file 3")
	}
	got := collect(t, path, ReadOptions{Tail: -1})
	if len(got) == 0 || len(got) >= 200 {
		t.Fatalf("rotation kept %d of 200 lines", len(got))
	}
	last := got[len(got)-1]
	if last != "stdout:line 199\n" {
		t.Fatalf("last line %q", last)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %q after %q", got[i], got[i-1])
		}
	}
}

func TestTailSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := OpenWriter(path, Options{})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		_ = w.Write("stdout", base.Add(time.Duration(i)*time.Second), fmt.Appendf(nil, "%d\n", i))
	}
	w.Close()
	if got := collect(t, path, ReadOptions{Tail: 3}); strings.Join(got, "") != "stdout:7\nstdout:8\nstdout:9\n" {
		t.Fatalf("tail 3: %q", got)
	}
	if got := collect(t, path, ReadOptions{Tail: 0}); len(got) != 0 {
		t.Fatalf("tail 0: %q", got)
	}
	got := collect(t, path, ReadOptions{Tail: -1, Since: base.Add(2 * time.Second), Until: base.Add(4 * time.Second)})
	if strings.Join(got, "") != "stdout:2\nstdout:3\n" {
		t.Fatalf("since/until: %q", got)
	}
}

func TestFollowSeesNewLinesAcrossRotationUntilDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := OpenWriter(path, Options{MaxSize: 400, MaxFiles: 5})
	done := make(chan struct{})
	seen := make(chan string, 100)
	result := make(chan error, 1)
	go func() {
		result <- Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true}, done, func(e Entry) error {
			seen <- string(e.Line)
			return nil
		})
	}()
	for i := range 20 {
		_ = w.Write("stdout", time.Now(), fmt.Appendf(nil, "n%02d\n", i))
		select {
		case got := <-seen:
			if want := fmt.Sprintf("n%02d\n", i); got != want {
				t.Fatalf("followed %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("line %d not seen while following", i)
		}
	}
	_ = w.Write("stdout", time.Now(), []byte("last\n"))
	close(done)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "last\n" {
		t.Fatalf("line written before done was lost: %q", got)
	}
	w.Close()
}
