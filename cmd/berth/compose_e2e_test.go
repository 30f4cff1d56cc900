package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func (p *project) idsByService() map[string][]string {
	out := map[string][]string{}
	for _, e := range p.ps() {
		out[e.Service] = append(out[e.Service], e.ID)
	}
	return out
}

// lastProbe is the last "workers=N" line the probe service printed.
func (p *project) lastProbe() string {
	lines := strings.Split(strings.TrimSpace(p.berth("logs", "--no-log-prefix", "--tail", "1", "probe")), "\n")
	return lines[len(lines)-1]
}

// waitProbe waits until the probe counts want workers; if it never does,
// the failure shows what a lookup from the probe's container answers now.
func (p *project) waitProbe(want int) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := p.lastProbe()
		if got == fmt.Sprintf("workers=%d", want) {
			return
		}
		if time.Now().After(deadline) {
			out, stderr, err := p.berthErr("exec", "-T", "probe", "nslookup", "worker")
			p.t.Fatalf("after 30s the probe says %q, want workers=%d; nslookup worker now: %v\n%s%s", got, want, err, out, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestComposeLifecycle(t *testing.T) {
	p := newProject(t, "app", "app")
	p.importBusybox()
	p.berth("up", "-d")

	before := p.idsByService()
	for _, svc := range []string{"kv", "web", "worker", "probe"} {
		if len(before[svc]) != 1 {
			t.Fatalf("service %s has %d containers after up: %v", svc, len(before[svc]), before)
		}
	}

	// The published port answers on the host, with what web fetched from
	// kv through its link alias.
	addr := strings.TrimSpace(p.berth("port", "web", "80"))
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("port web 80 = %q", addr)
	}
	testutil.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/index.html")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.TrimSpace(string(body)) != "stored-value" {
			return fmt.Errorf("web answered %q", body)
		}
		return nil
	})

	// A converged project: up again changes nothing.
	p.berth("up", "-d")
	if again := p.idsByService(); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Fatalf("second up replaced containers:\nbefore %v\nafter  %v", before, again)
	}
	if plan := p.berth("up", "-d", "--dry-run"); strings.Contains(plan, "create") || strings.Contains(plan, "recreate") {
		t.Fatalf("dry run of a converged project plans work:\n%s", plan)
	}

	// An edit to one service recreates that service only.
	edited := p.idsEditingEnv(t, "MODE=fast")
	for svc, ids := range edited {
		changed := ids[0] != before[svc][0]
		if changed != (svc == "worker") {
			t.Errorf("after editing worker, %s changed=%v", svc, changed)
		}
	}

	// Scale 1 -> 3 -> 1, with DNS following.
	p.berth("up", "-d", "--scale", "worker=3")
	if n := len(p.idsByService()["worker"]); n != 3 {
		t.Fatalf("scale to 3: %d workers", n)
	}
	p.waitProbe(3)
	p.berth("up", "-d", "--scale", "worker=1")
	if names := p.namesOf("worker"); len(names) != 1 || names[0] != "app-worker-1" {
		t.Fatalf("scale down kept %v, want app-worker-1", names)
	}
	p.waitProbe(1)

	// scale: up -d of the services named, with their new counts.
	p.berth("scale", "worker=2")
	if names := p.namesOf("worker"); len(names) != 2 {
		t.Fatalf("scale worker=2: %v", names)
	}
	p.berth("scale", "--no-deps", "worker=1")
	if names := p.namesOf("worker"); len(names) != 1 || names[0] != "app-worker-1" {
		t.Fatalf("scale worker=1 kept %v, want app-worker-1", names)
	}
	if _, stderr, err := p.berthErr("scale", "worker=two"); err == nil || !strings.Contains(stderr, "invalid scale specifier") {
		t.Fatalf("scale worker=two: %v\n%s", err, stderr)
	}

	// volumes: the project's, or those the services' containers mount.
	if out := strings.Fields(p.berth("volumes", "-q")); len(out) != 1 || out[0] != "app_data" {
		t.Fatalf("volumes -q: %q, want app_data", out)
	}
	if out := strings.TrimSpace(p.berth("volumes", "-q", "kv")); out != "app_data" {
		t.Fatalf("volumes -q kv: %q, want app_data", out)
	}
	if out := strings.TrimSpace(p.berth("volumes", "-q", "web")); out != "" {
		t.Fatalf("volumes -q web: %q, want none", out)
	}
	if out := p.berth("volumes", "--format", "json"); !strings.Contains(out, `"Name":"app_data"`) || !strings.Contains(out, `"Driver":"local"`) {
		t.Fatalf("volumes --format json:\n%s", out)
	}

	// cp out of and into a service's container (the named volume included).
	local := filepath.Join(t.TempDir(), "value")
	p.berth("cp", "kv:/data/value", local)
	if b, err := os.ReadFile(local); err != nil || strings.TrimSpace(string(b)) != "stored-value" {
		t.Fatalf("cp out: %q %v", b, err)
	}
	if err := os.WriteFile(local, []byte("copied-in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.berth("cp", local, "kv:/tmp/")
	back := filepath.Join(t.TempDir(), "back")
	p.berth("cp", "kv:/tmp/value", back)
	if b, _ := os.ReadFile(back); string(b) != "copied-in\n" {
		t.Fatalf("cp in then out: %q", b)
	}

	// commit: an image of a replica's changes.
	p.berth("exec", "-T", "kv", "sh", "-c", "echo committed > /marker")
	p.berth("commit", "-m", "snapshot", "kv", "app-kv:snap")
	if out := strings.TrimSpace(p.berth("container", "run", "--rm", "--network", "none", "app-kv:snap", "cat", "/marker")); out != "committed" {
		t.Fatalf("the committed image has /marker = %q", out)
	}
	p.berth("image", "rm", "app-kv:snap")

	// export: the replica's root filesystem as a tar, its volume left out.
	exported := filepath.Join(t.TempDir(), "kv.tar")
	p.berth("export", "-o", exported, "kv")
	listing, err := exec.Command("tar", "-tf", exported).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tf of the export: %v\n%s", err, listing)
	}
	if names := "\n" + string(listing); !strings.Contains(names, "\nmarker\n") || !strings.Contains(names, "\nbin/busybox\n") || strings.Contains(names, "data/value") {
		t.Fatalf("export kv lists:\n%s", listing)
	}
	if _, stderr, err := p.berthErr("commit", "--index", "2", "kv"); err == nil || !strings.Contains(stderr, "no container number 2") {
		t.Fatalf("commit --index 2 kv: %v\n%s", err, stderr)
	}

	// exec in a service's container, a one-off run, top and stats.
	if out := strings.TrimSpace(p.berth("exec", "-T", "kv", "cat", "/data/value")); out != "stored-value" {
		t.Fatalf("exec kv cat: %q", out)
	}
	// -T's long names: docker compose's --no-tty, and --no-TTY from before.
	for _, flag := range []string{"--no-tty", "--no-TTY"} {
		if out := strings.TrimSpace(p.berth("exec", flag, "kv", "cat", "/data/value")); out != "stored-value" {
			t.Fatalf("exec %s kv cat: %q", flag, out)
		}
	}
	if _, _, err := p.berthErr("exec", "-T", "kv", "sh", "-c", "exit 7"); exitCode(err) != 7 {
		t.Fatalf("exec's exit code: %v, want 7", err)
	}
	if out := strings.TrimSpace(p.berth("run", "--rm", "-T", "worker", "sh", "-c", "echo one-off $MODE")); out != "one-off fast" {
		t.Fatalf("run --rm: %q", out)
	}
	for _, e := range p.ps("-a") {
		if strings.Contains(e.Name, "-run-") {
			t.Fatalf("run --rm left %s behind", e.Name)
		}
	}
	if out := p.berth("top", "worker"); !strings.Contains(out, "app-worker-1") || !strings.Contains(out, "sleep") {
		t.Fatalf("top worker:\n%s", out)
	}
	if out := p.berth("stats", "--no-stream", "worker"); !strings.Contains(out, "app-worker-1") {
		t.Fatalf("stats:\n%s", out)
	}

	// stop, start, pause, unpause, restart.
	p.berth("stop", "-t", "1", "worker")
	if st := p.stateOf("worker"); st != "exited" {
		t.Fatalf("after stop, worker is %s", st)
	}
	p.berth("start", "--wait", "--wait-timeout", "20", "worker")
	if st := p.stateOf("worker"); st != "running" {
		t.Fatalf("after start --wait, worker is %s", st)
	}
	p.berth("pause", "worker")
	if st := p.stateOf("worker"); st != "paused" {
		t.Fatalf("after pause, worker is %s", st)
	}
	p.berth("unpause", "worker")
	p.berth("restart", "-t", "1", "worker")
	if st := p.stateOf("worker"); st != "running" {
		t.Fatalf("after restart, worker is %s", st)
	}

	// A recreated container keeps its predecessor's anonymous volumes; -V
	// recreates it with new ones, and the old ones go.
	p.berth("exec", "-T", "worker", "sh", "-c", "echo kept > /scratch/mark")
	volumes := func() int {
		entries, err := os.ReadDir(filepath.Join(p.root, "volumes"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	nvol := volumes()
	worker := p.idsByService()["worker"][0]
	p.berth("up", "-d", "-t", "1", "--force-recreate", "worker")
	if id := p.idsByService()["worker"][0]; id == worker {
		t.Fatalf("up --force-recreate worker kept container %s", id)
	}
	if out := strings.TrimSpace(p.berth("exec", "-T", "worker", "cat", "/scratch/mark")); out != "kept" {
		t.Fatalf("after --force-recreate, /scratch/mark = %q, want kept", out)
	}
	p.berth("up", "-d", "-t", "1", "-V", "worker")
	if out, _, err := p.berthErr("exec", "-T", "worker", "cat", "/scratch/mark"); err == nil {
		t.Fatalf("after -V, the new anonymous volume has /scratch/mark: %q", out)
	}
	if n := volumes(); n != nvol {
		t.Fatalf("%d volumes after -V, want %d: the old anonymous one goes", n, nvol)
	}

	// --force-recreate recreates the services named, not what they need
	// (web links kv); --always-recreate-deps recreates that too.
	ids := p.idsByService()
	p.berth("up", "-d", "-t", "1", "--force-recreate", "web")
	after := p.idsByService()
	if after["web"][0] == ids["web"][0] || after["kv"][0] != ids["kv"][0] {
		t.Fatalf("up --force-recreate web: web %s -> %s, kv %s -> %s; want web only recreated", ids["web"][0], after["web"][0], ids["kv"][0], after["kv"][0])
	}
	p.berth("up", "-d", "-t", "1", "--always-recreate-deps", "web")
	if again := p.idsByService(); again["kv"][0] == after["kv"][0] {
		t.Fatalf("up --always-recreate-deps web kept kv's container %s", again["kv"][0])
	}
	if _, stderr, err := p.berthErr("up", "-d", "-V", "--no-recreate"); err == nil || !strings.Contains(stderr, "incompatible") {
		t.Fatalf("up -V --no-recreate: %v\n%s", err, stderr)
	}

	// down -v takes the named volume too (the leak check covers the rest).
	p.berth("down", "-v", "-t", "1")
	if vols, err := os.ReadDir(filepath.Join(p.root, "volumes")); err != nil || len(vols) != 0 {
		t.Fatalf("volumes left after down -v: %v %v", vols, err)
	}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

func (p *project) idsEditingEnv(t *testing.T, env string) map[string][]string {
	t.Helper()
	cmd := []string{"up", "-d"}
	p.t.Setenv(strings.Split(env, "=")[0], strings.Split(env, "=")[1])
	p.berth(cmd...)
	return p.idsByService()
}

func (p *project) namesOf(service string) []string {
	var names []string
	for _, e := range p.ps("-a") {
		if e.Service == service {
			names = append(names, e.Name)
		}
	}
	return names
}

func (p *project) stateOf(service string) string {
	for _, e := range p.ps("-a") {
		if e.Service == service {
			return e.State
		}
	}
	return "missing"
}
