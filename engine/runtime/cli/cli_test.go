package cli

import (
	"testing"
)

// TestFastPathDeclinesWhatCobraShouldAnswer: help, unknown verbs, unknown
// or malformed flags and wrong argument counts are left to cobra, which
// explains them; only complete runtime commands run here.
func TestFastPathDeclinesWhatCobraShouldAnswer(t *testing.T) {
	for _, args := range [][]string{
		{"berth"},
		{"berth", "up"},
		{"berth", "runtime"},
		{"berth", "runtime", "frobnicate", "x"},
		{"berth", "runtime", "run", "--help"},
		{"berth", "runtime", "run", "-h"},
		{"berth", "runtime", "run", "--no-such-flag", "x"},
		{"berth", "runtime", "run"},
		{"berth", "runtime", "state", "a", "b"},
		{"berth", "--root"},
		{"berth", "--verbose", "runtime", "list"},
		{"berth", "container", "runtime", "list"},
	} {
		if _, handled := FastPath(args); handled {
			t.Errorf("FastPath ran %q", args)
		}
	}
}

func TestFastPathRunsRuntimeCommands(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{
		{"berth", "--root", root, "runtime", "list"},
		{"berth", "--root=" + root, "-p", "proj", "runtime", "ls", "--format", "json"},
		{"berth", "-H", "unix:///x.sock", "--root", root, "runtime", "list"},
	} {
		code, handled := FastPath(args)
		if !handled || code != 0 {
			t.Errorf("FastPath(%q) = %d, %v; want it run, status 0", args, code, handled)
		}
	}
	if code, handled := FastPath([]string{"berth", "--root", root, "runtime", "state", "nope"}); !handled || code != 1 {
		t.Errorf("state of a missing container: %d, %v; want status 1", code, handled)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"9": 9, "KILL": 9, "sigterm": 15, "HUP": 1} {
		if got, err := ParseSignal(in); err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSignal("NOPE"); err == nil {
		t.Error("an unknown signal parsed")
	}
}
