package manifest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hashBase is the project the hash table edits; "web" is the service
// whose hash is compared.
const hashBase = `services:
  web:
    image: nginx:1.27
    build:
      context: .
      args:
        VERSION: "1"
    command: ["nginx", "-g", "daemon off;"]
    environment:
      A: "1"
      B: "2"
    ports: ["8080:80"]
    volumes: ["./html:/usr/share/nginx/html:ro", "data:/data"]
    networks:
      front:
        aliases: [www]
    healthcheck:
      test: ["CMD", "true"]
    cap_add: [NET_ADMIN, SYS_TIME]
    extra_hosts: ["a.local:10.0.0.1", "b.local:10.0.0.2"]
    depends_on: [db]
  db:
    image: postgres:16
volumes:
  data:
networks:
  front:
`

// loadHash loads compose (and files) in dir and returns web's hash.
func loadHash(t *testing.T, dir, compose string, files map[string]string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Load(context.Background(), Options{WorkDir: dir, Profiles: []string{"*"}})
	if err != nil {
		t.Fatalf("load:\n%s\n%v", compose, err)
	}
	return p.Services["web"].ConfigHash
}

// TestConfigHashChangesExactlyWhenRecreateIsNeeded edits one thing of a
// project at a time and checks whether web's config hash changes: it must
// for what a running container was made from, and must not for what only
// reconcile, the builder or `watch` read (the cause of docker compose's
// spurious recreates), nor for writing the same thing another way.
func TestConfigHashChangesExactlyWhenRecreateIsNeeded(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		files    map[string]string
		changes  bool
	}{
		// What the container is made from.
		{name: "image tag", old: "nginx:1.27", new: "nginx:1.28", changes: true},
		{name: "command", old: `"daemon off;"]`, new: `"daemon on;"]`, changes: true},
		{name: "environment value", old: `A: "1"`, new: `A: "one"`, changes: true},
		{name: "environment added", old: `B: "2"`, new: "B: \"2\"\n      C: \"3\"", changes: true},
		{name: "published port", old: `"8080:80"`, new: `"8081:80"`, changes: true},
		{name: "bind made writable", old: `html:ro"`, new: `html"`, changes: true},
		{name: "volume target", old: `"data:/data"`, new: `"data:/srv/data"`, changes: true},
		{name: "volume engine name", old: "volumes:\n  data:\n", new: "volumes:\n  data:\n    name: shared-data\n", changes: true},
		{name: "network alias", old: "aliases: [www]", new: "aliases: [www, web2]", changes: true},
		{name: "healthcheck test", old: `test: ["CMD", "true"]`, new: `test: ["CMD", "false"]`, changes: true},
		{name: "capability added", old: "cap_add: [NET_ADMIN, SYS_TIME]", new: "cap_add: [NET_ADMIN, SYS_TIME, SYS_ADMIN]", changes: true},
		{name: "user", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    user: nobody\n", changes: true},
		{name: "restart policy", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    restart: always\n", changes: true},
		{name: "label", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    labels: [team=web]\n", changes: true},
		{name: "container_name", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    container_name: the-web\n", changes: true},
		{name: "memory limit", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    mem_limit: 256m\n", changes: true},
		{name: "x-berth link_env", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    x-berth:\n      link_env: true\n", changes: true},
		{name: "env_file content", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    env_file: [web.env]\n",
			files: map[string]string{"web.env": "D=4\n"}, changes: true},

		// What only reconcile, the builder or watch read.
		{name: "scale", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    scale: 3\n"},
		{name: "deploy.replicas", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    deploy:\n      replicas: 2\n"},
		{name: "depends_on removed", old: "    depends_on: [db]\n", new: ""},
		{name: "depends_on condition", old: "    depends_on: [db]\n", new: "    depends_on:\n      db:\n        condition: service_healthy\n"},
		{name: "profiles", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    profiles: [frontend]\n"},
		{name: "develop.watch", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    develop:\n      watch:\n        - path: ./src\n          action: rebuild\n"},
		{name: "build arg", old: `VERSION: "1"`, new: `VERSION: "2"`},
		{name: "pull_policy", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    pull_policy: always\n"},
		{name: "another service's image", old: "postgres:16", new: "postgres:17"},

		// The same thing written another way.
		{name: "environment order", old: "A: \"1\"\n      B: \"2\"", new: "B: \"2\"\n      A: \"1\""},
		{name: "environment as list", old: "environment:\n      A: \"1\"\n      B: \"2\"", new: "environment:\n      - A=1\n      - B=2"},
		{name: "environment from env_file", old: "environment:\n      A: \"1\"\n      B: \"2\"", new: "env_file: [web.env]",
			files: map[string]string{"web.env": "A=1\nB=2\n"}},
		{name: "capability order", old: "cap_add: [NET_ADMIN, SYS_TIME]", new: "cap_add: [SYS_TIME, NET_ADMIN]"},
		{name: "extra_hosts order", old: `extra_hosts: ["a.local:10.0.0.1", "b.local:10.0.0.2"]`, new: `extra_hosts: ["b.local=10.0.0.2", "a.local=10.0.0.1"]`},
		{name: "healthcheck default interval", old: `test: ["CMD", "true"]`, new: "test: [\"CMD\", \"true\"]\n      interval: 30s\n      retries: 3"},
		{name: "stop_grace_period default", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    stop_grace_period: 10s\n"},
		{name: "restart no", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    restart: \"no\"\n"},
		{name: "x-berth default", old: "    depends_on: [db]\n", new: "    depends_on: [db]\n    x-berth:\n      link_env: false\n"},
		{name: "port long syntax", old: `ports: ["8080:80"]`, new: "ports:\n      - target: 80\n        published: \"8080\""},
		{name: "volume long syntax", old: `"data:/data"]`, new: "{type: volume, source: data, target: /data}]"},
		{name: "comment and blank line", old: "services:\n", new: "# the web tier\n\nservices:\n"},
		{name: "interpolated image", old: "nginx:1.27", new: "nginx:${TAG:-1.27}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(hashBase, tt.old) {
				t.Fatalf("base has no %q", tt.old)
			}
			dir := t.TempDir()
			base := loadHash(t, dir, hashBase, nil)
			edited := loadHash(t, dir, strings.Replace(hashBase, tt.old, tt.new, 1), tt.files)
			if changed := base != edited; changed != tt.changes {
				t.Errorf("hash changed: %v, want %v", changed, tt.changes)
			}
		})
	}
}

// TestScaleKeepsConfigHash: --scale changes the replica count only.
func TestScaleKeepsConfigHash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(hashBase), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Services["web"].ConfigHash
	if err := p.Scale("web", 4); err != nil {
		t.Fatal(err)
	}
	s := p.Services["web"]
	if s.Replicas != 4 || ConfigHash(s) != before || s.ConfigHash != before {
		t.Errorf("after Scale(web, 4): replicas %d, hash %s -> %s", s.Replicas, before, ConfigHash(s))
	}
	if err := p.Scale("nope", 1); err == nil {
		t.Error("Scale of an unknown service: no error")
	}
	if err := p.Scale("web", -1); err == nil {
		t.Error("Scale to -1: no error")
	}
}

// TestConfigHashIsDeterministic: maps are hashed in key order, so many
// loads of a project with many map entries give one hash.
func TestConfigHashIsDeterministic(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("services:\n  web:\n    image: busybox\n    environment:\n")
	for i := range 50 {
		b.WriteString("      K" + strings.Repeat("x", i) + ": v\n")
	}
	b.WriteString("    labels:\n")
	for i := range 50 {
		b.WriteString("      l" + strings.Repeat("y", i) + ": v\n")
	}
	dir := t.TempDir()
	first := loadHash(t, dir, b.String(), nil)
	for range 20 {
		if h := loadHash(t, dir, b.String(), nil); h != first {
			t.Fatalf("hash %s, then %s", first, h)
		}
	}
}
