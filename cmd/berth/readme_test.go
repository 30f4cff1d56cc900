package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// tourBlock is the shell block under README.md's "A five-minute tour".
func tourBlock(t *testing.T, readme string) []string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "## A five-minute tour")
	if !ok {
		t.Fatal("README.md has no five-minute tour")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("the tour has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestReadmeTourRunsAsWritten executes the README's tour, line by line as
// written, after `make demo`'s steps, and checks what each line prints
// against what its comment promises.
func TestReadmeTourRunsAsWritten(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "curl", "go")
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := tourBlock(t, string(readme))

	// The tour runs "from the repository after make demo": bin/berth is the
	// binary under test, and the demo has brought samples/counter up.
	bin := filepath.Join(repo, "bin", "berth")
	if src := testutil.BerthBinary(t); src != bin {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin+".tmp", data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".tmp", bin); err != nil {
			t.Fatal(err)
		}
	}
	root := testutil.StateRoot(t)
	env := append(os.Environ(), "BERTH_ROOT="+root, "BERTH_HOST=", "BERTH="+bin)
	t.Cleanup(func() {
		// With the test's environment: a bare berth would reach (and start)
		// the machine's default daemon.
		for _, args := range [][]string{{"watch", "stop", "counter"}, {"-p", "counter", "down", "-v", "-t", "1"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			_ = cmd.Run()
		}
		stopDaemon(t, root)
	})
	demo := exec.Command("bash", filepath.Join(repo, "samples", "counter", "demo.sh"))
	demo.Env = env
	if out, err := demo.CombinedOutput(); err != nil {
		t.Fatalf("make demo's script: %v\n%s", err, out)
	}

	// Run the lines one by one in one shell session, so cd and export hold
	// from one to the next, with a marker between their outputs.
	var script strings.Builder
	script.WriteString("cd " + strconv.Quote(repo) + "\n")
	for i, l := range lines {
		script.WriteString("echo '@@@ " + strconv.Itoa(i) + "'\n" + l + "\n")
	}
	script.WriteString("echo '@@@ end'\n")
	sh := exec.Command("bash", "-e", "-o", "pipefail", "-c", script.String())
	sh.Env = env
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	err = sh.Run()
	outputs := map[string]string{}
	parts := regexp.MustCompile(`(?m)^@@@ (\d+|end)$`).Split(out.String(), -1)
	for i, l := range lines {
		if i+1 < len(parts) {
			outputs[l] = parts[i+1]
		}
	}
	if err != nil || !strings.Contains(out.String(), "@@@ end") {
		t.Fatalf("the tour stopped (%v):\n%s", err, out.String())
	}

	// What each line's comment promises.
	check := func(prefix string, ok func(string) bool) {
		t.Helper()
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				if !ok(outputs[l]) {
					t.Errorf("%q printed:\n%s", strings.TrimSpace(l), outputs[l])
				}
				return
			}
		}
		t.Errorf("the tour has no line starting %q", prefix)
	}
	contains := func(s ...string) func(string) bool {
		return func(out string) bool {
			for _, want := range s {
				if !strings.Contains(out, want) {
					return false
				}
			}
			return true
		}
	}
	check("berth ps ", contains("counter-front-1", "counter-kv-1", "counter-web-1", "counter-web-2", "counter-web-3"))
	check("curl -s localhost:8080 ", contains("visit ", ", answered by "))
	check("berth logs --tail 2 web", contains("web-1  | "))
	check("berth exec kv ls /data", contains("counts.json"))
	check("berth ps --format json | grep -c", func(out string) bool { return strings.TrimSpace(out) == "5" })
	check("berth watch ls", contains("counter"))
	check("berth up -d --wait && curl -s localhost:8080", contains("visit ", ", answered by "))
}
