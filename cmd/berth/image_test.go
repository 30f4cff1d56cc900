package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/container/monitor"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// imageCLI runs berth against root with DOCKER_CONFIG set and stdin fed,
// returning stdout and stderr.
func imageCLI(t *testing.T, root, dockerConfig, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(testutil.BerthBinary(t), append([]string{"--root", root}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustCLI is imageCLI that fails the test on an error.
func mustCLI(t *testing.T, root, dockerConfig string, args ...string) string {
	t.Helper()
	out, stderr, err := imageCLI(t, root, dockerConfig, "", args...)
	if err != nil {
		t.Fatalf("berth %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// stopDaemonAndMonitor ends the daemon of root and the monitor it started,
// which outlives daemons by design.
func stopDaemonAndMonitor(t *testing.T, root string) {
	t.Helper()
	stopDaemon(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = monitor.NewClient(root).Shutdown(ctx, false)
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, l := range testutil.Leaks(root) {
			if strings.HasPrefix(l, "process") {
				return errors.New(l)
			}
		}
		return nil
	})
}

// TestImageCommandsThroughTheDaemon drives `berth image`, `login` and
// `logout` as a user would: import busybox-static, log in to a registry
// with basic auth, push, pull into another state root (another daemon),
// compare the unpacked tree byte for byte, save and load it into a third,
// and clean up with rm and prune.
func TestImageCommandsThroughTheDaemon(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	reg := imagetest.StartRegistry(t, imagetest.AuthBasic)
	layer, src := imagetest.BusyboxLayer(t)
	work := t.TempDir()
	tarball := filepath.Join(work, "busybox.tar")
	if err := os.WriteFile(tarball, layer, 0o600); err != nil {
		t.Fatal(err)
	}
	dockerConfig := filepath.Join(work, "docker-config")
	ref := reg.Host + "/cli/busybox:1"
	roots := []string{testutil.StateRoot(t), testutil.StateRoot(t), testutil.StateRoot(t)}
	for _, r := range roots {
		t.Cleanup(func() { stopDaemonAndMonitor(t, r) })
	}
	one, two, three := roots[0], roots[1], roots[2]

	id := strings.TrimSpace(mustCLI(t, one, dockerConfig, "image", "import", "--change", `CMD ["/bin/sh"]`, "-m", "busybox-static", tarball, ref))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q, want an image ID", id)
	}
	short := strings.TrimPrefix(id, "sha256:")[:12]
	ls := mustCLI(t, one, dockerConfig, "image", "ls")
	if !strings.HasPrefix(ls, "REPOSITORY") || !strings.Contains(ls, reg.Host+"/cli/busybox   1         "+short) {
		t.Fatalf("image ls:\n%s", ls)
	}

	if _, stderr, err := imageCLI(t, one, dockerConfig, "", "image", "push", ref); err == nil || !strings.Contains(stderr, "log in with `berth login`") {
		t.Fatalf("push before login: err=%v stderr=%s", err, stderr)
	}
	if _, stderr, err := imageCLI(t, one, dockerConfig, "wrong\n", "login", "-u", imagetest.User, "--password-stdin", reg.Host); err == nil || !strings.Contains(stderr, "incorrect username or password") {
		t.Fatalf("login with a wrong password: err=%v stderr=%s", err, stderr)
	}
	out, stderr, err := imageCLI(t, one, dockerConfig, imagetest.Password+"\n", "login", "-u", imagetest.User, "--password-stdin", reg.Host)
	if err != nil || strings.TrimSpace(out) != "Login Succeeded" {
		t.Fatalf("login: %v\n%s\n%s", err, out, stderr)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(filepath.Join(dockerConfig, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Auths[reg.Host].Auth != base64.StdEncoding.EncodeToString([]byte(imagetest.User+":"+imagetest.Password)) {
		t.Fatalf("config.json after login, as docker writes it: %s (%v)", b, err)
	}

	push := mustCLI(t, one, dockerConfig, "--progress", "plain", "image", "push", ref)
	if !strings.Contains(push, "The push refers to repository ["+reg.Host+"/cli/busybox]") || !strings.Contains(push, ": Pushed") || !strings.Contains(push, "1: digest: sha256:") {
		t.Fatalf("push output:\n%s", push)
	}

	pull := mustCLI(t, two, dockerConfig, "--progress", "plain", "image", "pull", ref)
	lines := strings.Split(strings.TrimSpace(pull), "\n")
	if !strings.Contains(pull, ": Pull complete") || !strings.Contains(pull, "Status: Downloaded newer image for "+ref) || lines[len(lines)-1] != ref {
		t.Fatalf("pull output:\n%s", pull)
	}
	var details []struct {
		ID     string `json:"Id"`
		RootFS struct{ Layers []string }
	}
	inspect := mustCLI(t, two, dockerConfig, "image", "inspect", ref)
	if err := json.Unmarshal([]byte(inspect), &details); err != nil || len(details) != 1 || details[0].ID != id {
		t.Fatalf("inspect after pull: %v\n%s", err, inspect)
	}
	snapshot := filepath.Join(two, "image", "snapshots", strings.TrimPrefix(details[0].RootFS.Layers[0], "sha256:"), "fs")
	imagetest.CompareTrees(t, src, snapshot)

	hist := mustCLI(t, two, dockerConfig, "image", "history", "--format", "json", ref)
	var row map[string]string
	if err := json.Unmarshal([]byte(strings.Split(hist, "\n")[0]), &row); err != nil || row["ID"] != short || row["Comment"] != "busybox-static" {
		t.Fatalf("history --format json:\n%s", hist)
	}

	saved := filepath.Join(work, "saved.tar")
	mustCLI(t, two, dockerConfig, "image", "save", "-o", saved, ref)
	// From stdin, padded to a 10 KiB record as GNU tar pads its output.
	archive, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	archive = append(archive, make([]byte, 10240-len(archive)%10240)...)
	load, stderr, err := imageCLI(t, three, dockerConfig, string(archive), "image", "load", "-q")
	if err != nil || strings.TrimSpace(load) != "Loaded image: "+ref {
		t.Fatalf("load output: %q, %v\n%s", load, err, stderr)
	}
	if got := strings.TrimSpace(mustCLI(t, three, dockerConfig, "image", "ls", "-q", "--no-trunc")); got != id {
		t.Fatalf("after load: ls -q %q, want %s", got, id)
	}
	if _, stderr, err := imageCLI(t, three, dockerConfig, "", "image", "rm", "no/such:image"); err == nil || !strings.Contains(stderr, "no such image") {
		t.Fatalf("rm of a missing image: %v %s", err, stderr)
	}
	rm := mustCLI(t, three, dockerConfig, "image", "rm", ref)
	if rm != "Untagged: "+ref+"\nDeleted: "+id+"\n" {
		t.Fatalf("rm output:\n%s", rm)
	}
	prune := mustCLI(t, two, dockerConfig, "image", "prune", "--all", "--force")
	if !strings.Contains(prune, "deleted: "+id) || !strings.Contains(prune, "Total reclaimed space:") {
		t.Fatalf("prune output:\n%s", prune)
	}

	if out := mustCLI(t, one, dockerConfig, "logout", reg.Host); strings.TrimSpace(out) != "Removing login credentials for "+reg.Host {
		t.Fatalf("logout: %q", out)
	}
	b, _ = os.ReadFile(filepath.Join(dockerConfig, "config.json"))
	if strings.Contains(string(b), reg.Host) {
		t.Fatalf("config.json still has the registry after logout: %s", b)
	}
}
