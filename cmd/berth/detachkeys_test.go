package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{"", []byte{0x10, 0x11}},
		{"ctrl-p,ctrl-q", []byte{0x10, 0x11}},
		{"ctrl-a,x", []byte{0x01, 'x'}},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}},
		{"ctrl-Z", []byte{26}},
	} {
		got, err := parseDetachKeys(tc.in)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "alt-x", "ab", "ctrl-p,,ctrl-q"} {
		if _, err := parseDetachKeys(bad); err == nil || !strings.Contains(err.Error(), "invalid detach keys") {
			t.Errorf("parseDetachKeys(%q): %v, want an error", bad, err)
		}
	}
}

func TestDetachReaderPassesAllButTheKeys(t *testing.T) {
	keys := []byte{0x10, 0x11}
	for _, tc := range []struct {
		name, in, out string
		detached      bool
	}{
		{"no keys", "echo hi\r", "echo hi\r", false},
		{"the keys", "ls\r\x10\x11after", "ls\r", true},
		{"the first key alone", "a\x10b", "a\x10b", false},
		{"the first key twice, then the second", "\x10\x10\x11", "\x10", true},
		{"the first key last", "a\x10", "a\x10", false},
	} {
		// One byte at a time too: a sequence split across reads.
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(&detachReader{r: r, keys: keys})
			if string(got) != tc.out || errors.Is(err, errDetached) != tc.detached || (err != nil && !errors.Is(err, errDetached)) {
				t.Errorf("%s (one byte at a time: %v): passed %q, %v; want %q, detached %v", tc.name, oneByte, got, err, tc.out, tc.detached)
			}
		}
	}
}
