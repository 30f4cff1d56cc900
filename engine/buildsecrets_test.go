package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/manifest"
)

// TestBuildSecretsFromComposeFiles: build.secrets, by the secret's name or
// the reference's target, from a file (read as the build starts) or the
// environment.
func TestBuildSecretsFromComposeFiles(t *testing.T) {
	dir := t.TempDir()
	compose := `services:
  web:
    build:
      context: .
      secrets:
        - npmrc
        - source: token
          target: api_token
secrets:
  npmrc:
    file: ./npmrc
  token:
    environment: API_TOKEN
`
	for name, data := range map[string]string{"compose.yaml": compose, "npmrc": "//registry/:_authToken=x\n", "Dockerfile": "FROM scratch\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := manifest.Load(context.Background(), manifest.Options{WorkDir: dir, Environ: []string{"API_TOKEN=s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := engine.ServiceBuildOptions(p, p.Services["web"])
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Secrets) != 2 || string(o.Secrets["npmrc"]) != "//registry/:_authToken=x\n" || string(o.Secrets["api_token"]) != "s3cret" {
		t.Errorf("secrets %q", o.Secrets)
	}
	// A file gone by build time is an error that names the service and the secret.
	os.Remove(filepath.Join(dir, "npmrc"))
	if _, err := engine.ServiceBuildOptions(p, p.Services["web"]); err == nil || !strings.Contains(err.Error(), "service web: build secret npmrc") {
		t.Errorf("missing file: %v", err)
	}
}
