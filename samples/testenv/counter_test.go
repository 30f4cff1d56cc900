// Package testenv_test shows berth's testenv package at work: a Go test
// brings samples/counter up in a state root of its own, talks to it through
// its published port, and leaves nothing behind when it ends.
package testenv_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/testenv"
)

func TestCounterCountsVisitsAcrossReplicas(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root (this would fail under CI=true)")
	}
	// The sample's program is built on the host and copied FROM scratch.
	build := exec.Command("go", "build", "-o", filepath.Join("..", "counter", "app", "app"), "../counter/app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// ... with busybox-static for its tools, as make demo does.
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "counter", "app", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}

	env := testenv.Up(t, "../counter", testenv.Isolated(), testenv.Env("COUNTER_PORT=0"))

	url := "http://" + env.Addr("front", 80) + "/"
	seen := map[string]bool{}
	for i := 1; i <= 9; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// "visit N, answered by HOST"
		line := strings.TrimSpace(string(body))
		if !strings.HasPrefix(line, "visit ") {
			t.Fatalf("request %d: %q", i, line)
		}
		if want := "visit " + strconv.Itoa(i) + ","; !strings.HasPrefix(line, want) {
			t.Fatalf("request %d: %q, want it to start %q", i, line, want)
		}
		seen[line[strings.LastIndex(line, " ")+1:]] = true
	}
	if len(seen) < 2 {
		t.Fatalf("nine requests were all answered by %v: DNS round robin over three replicas should spread them", seen)
	}
	if ips := env.IPs("web"); len(ips) != 3 {
		t.Fatalf("web has %d replicas, want 3", len(ips))
	}
}
