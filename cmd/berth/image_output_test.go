package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/image"
)

func TestPlainProgressPrintsEachStatusOnce(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newProgressPrinter(&out, "plain")
	for _, e := range []image.Event{
		{ID: "1", Status: "Pulling from library/busybox"},
		{ID: "abc", Status: "Pulling fs layer"},
		{ID: "abc", Status: "Downloading", Current: 10, Total: 100},
		{ID: "abc", Status: "Downloading", Current: 50, Total: 100},
		{ID: "abc", Status: "Pull complete"},
		{Status: "Digest: sha256:x"},
	} {
		p.sink(e)
	}
	want := "1: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Downloading\nabc: Pull complete\nDigest: sha256:x\n"
	if out.String() != want {
		t.Fatalf("plain progress:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestTTYProgressRedrawsLinesInPlace(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newProgressPrinter(&out, "tty")
	p.sink(image.Event{ID: "a", Status: "Downloading", Current: 1 << 20, Total: 2 << 20})
	p.sink(image.Event{ID: "b", Status: "Pulling fs layer"})
	p.sink(image.Event{ID: "a", Status: "Pull complete"})
	s := out.String()
	// Third drawing: up two lines, then both lines again, a's updated.
	last := s[strings.LastIndex(s, "\x1b[2A"):]
	if last != "\x1b[2A\x1b[2Ka: Pull complete\n\x1b[2Kb: Pulling fs layer\n" {
		t.Fatalf("last redraw %q", last)
	}
	if !strings.Contains(s, "a: Downloading [=========================>                        ]   1.05MB/2.1MB") {
		t.Fatalf("no progress bar in %q", s)
	}
}

func TestImageRowsAsDockerShowsThem(t *testing.T) {
	t.Parallel()
	created := time.Now().Add(-3 * time.Hour)
	rows := imageRows([]image.Summary{
		{ID: "sha256:0123456789abcdef0000", RepoTags: []string{"docker.io/library/busybox:latest", "localhost:5000/bb:1"},
			RepoDigests: []string{"localhost:5000/bb@sha256:feed"}, Created: created, Size: 1_240_000},
		{ID: "sha256:fedcba9876543210ffff", Created: created, Size: 0},
	}, false)
	want := []imageRow{
		{Repository: "busybox", Tag: "latest", ID: "0123456789ab", Digest: "<none>", Size: "1.24MB", CreatedSince: "3 hours ago"},
		{Repository: "localhost:5000/bb", Tag: "1", ID: "0123456789ab", Digest: "sha256:feed", Size: "1.24MB", CreatedSince: "3 hours ago"},
		{Repository: "<none>", Tag: "<none>", ID: "fedcba987654", Digest: "<none>", Size: "0B", CreatedSince: "3 hours ago"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Repository != w.Repository || r.Tag != w.Tag || r.ID != w.ID || r.Digest != w.Digest || r.Size != w.Size || r.CreatedSince != w.CreatedSince {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
	}
}
