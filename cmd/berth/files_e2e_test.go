package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsAndConfigsFromFileContentAndEnvironment(t *testing.T) {
	p := newProject(t, "files", "files")
	p.importBusybox()
	t.Setenv("FILES_TOKEN", "tok-1")
	t.Setenv("FILES_PASSWORD", "s3cret")
	p.berth("up", "-d", "--wait")

	for _, c := range []struct{ path, want string }{
		{"/run/secrets/token", "tok-1"},
		{"/run/secrets/db-password", "s3cret"},
		{"/greeting", "hello from content"},
		{"/etc/app/settings.ini", "level = 3"},
	} {
		if got := p.execOut("app", "cat", c.path); got != c.want {
			t.Errorf("%s holds %q, want %q", c.path, got, c.want)
		}
	}
	// docker compose's modes: 0444 unless set; the owner as given.
	if got := p.execOut("app", "stat", "-c", "%a %u %g", "/run/secrets/db-password"); got != "400 1000 1001" {
		t.Errorf("db-password: mode and owner %q, want 400 1000 1001", got)
	}
	if got := p.execOut("app", "stat", "-c", "%a %u %g", "/greeting"); got != "444 0 0" {
		t.Errorf("greeting: mode and owner %q, want 444 0 0", got)
	}
	// inspect names the files but does not show what the secrets hold.
	if out := p.berth("container", "inspect", "files-app-1"); !strings.Contains(out, "/run/secrets/token") || strings.Contains(out, "tok-1") || strings.Contains(out, "dG9rLTE") {
		t.Errorf("inspect shows the secret or not its file:\n%s", out)
	}
	// Read-only, like every secret and config.
	if _, _, err := p.berthErr("exec", "-T", "app", "sh", "-c", "echo x > /greeting"); err == nil {
		t.Error("/greeting could be written")
	}

	// A new value recreates the service, and the file follows it.
	t.Setenv("FILES_TOKEN", "tok-2")
	p.berth("up", "-d", "--wait")
	if got := p.execOut("app", "cat", "/run/secrets/token"); got != "tok-2" {
		t.Errorf("after the change the token is %q", got)
	}

	// A uid that is not a number is refused, naming the file, the service
	// and the key, and what runs stays as it was.
	before := p.ps()
	compose := filepath.Join(p.dir, "compose.yaml")
	good, err := os.ReadFile(compose)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compose, []byte(strings.Replace(string(good), `uid: "1000"`, `uid: "alice"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := p.berthErr("up", "-d")
	if err == nil || !strings.Contains(stderr, "compose.yaml:") || !strings.Contains(stderr, `service "app": secrets.1.uid`) {
		t.Fatalf("up with uid alice: %v\n%s", err, stderr)
	}
	if err := os.WriteFile(compose, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if after := p.ps(); len(after) != 1 || len(before) != 1 || after[0].ID != before[0].ID || after[0].State != "running" {
		t.Errorf("the refused up changed what runs: %+v -> %+v", before, after)
	}
}
