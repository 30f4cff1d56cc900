package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/sirupsen/logrus"
)

// TestMain quiets compose-go's logrus warnings (unset variables in the
// fuzz seeds, ...): they are the user's to read, not the test log's.
func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// writeProject writes files (name -> content) into a new directory.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadWithoutComposeFileIsNotFound(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{"README": "no compose file here"})
	_, err := Load(context.Background(), Options{WorkDir: dir, ProjectDirectory: dir})
	if !errors.Is(err, ErrNoComposeFile) || !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v, want ErrNoComposeFile (not found)", err)
	}
}

func TestLoadRefusesInvalidProjectName(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  a:\n    image: busybox\n"})
	_, err := Load(context.Background(), Options{WorkDir: dir, ProjectName: "My Project"})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `invalid project name "My Project"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMissingEnvFile(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  a:\n    image: busybox\n"})
	_, err := Load(context.Background(), Options{WorkDir: dir, EnvFiles: []string{"nope.env"}})
	if err == nil || !strings.Contains(err.Error(), "nope.env") {
		t.Fatalf("err = %v, want one naming nope.env", err)
	}
}

// TestLoadEnvironmentPrecedence: the user's environment wins over .env;
// COMPOSE_DISABLE_ENV_FILE turns .env off; --env-file replaces it.
func TestLoadEnvironmentPrecedence(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{
		"compose.yaml": "services:\n  a:\n    image: busybox:${TAG:-none}\n    environment:\n      WHO: ${WHO:-nobody}\n",
		".env":         "TAG=dotenv\nWHO=dotenv\n",
		"other.env":    "TAG=other\n",
	})
	tests := []struct {
		name      string
		environ   []string
		envFiles  []string
		tag, user string
	}{
		{name: "dotenv", tag: "dotenv", user: "dotenv"},
		{name: "environment wins", environ: []string{"WHO=shell"}, tag: "dotenv", user: "shell"},
		{name: "disabled", environ: []string{"COMPOSE_DISABLE_ENV_FILE=true"}, tag: "none", user: "nobody"},
		{name: "env-file", envFiles: []string{"other.env"}, tag: "other", user: "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Load(context.Background(), Options{WorkDir: dir, Environ: tt.environ, EnvFiles: tt.envFiles})
			if err != nil {
				t.Fatal(err)
			}
			a := p.Services["a"]
			if a.Image != "busybox:"+tt.tag || a.Environment["WHO"] != tt.user {
				t.Errorf("image %s, WHO=%s; want busybox:%s, WHO=%s", a.Image, a.Environment["WHO"], tt.tag, tt.user)
			}
		})
	}
}

// TestLoadSelectsServices: naming services keeps them and what they
// depend on, and enables a service whose profile is not active.
func TestLoadSelectsServices(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{"compose.yaml": `services:
  web:
    image: busybox
    depends_on: [api]
  api:
    image: busybox
    depends_on: [db]
  db:
    image: busybox
  other:
    image: busybox
  debug:
    image: busybox
    profiles: [debug]
    depends_on: [db]
`})
	for _, tt := range []struct {
		services, want []string
	}{
		{services: nil, want: []string{"api", "db", "other", "web"}},
		{services: []string{"api"}, want: []string{"api", "db"}},
		{services: []string{"debug"}, want: []string{"db", "debug"}},
	} {
		p, err := Load(context.Background(), Options{WorkDir: dir, Services: tt.services})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.ServiceNames(); !slices.Equal(got, tt.want) {
			t.Errorf("services %v: loaded %v, want %v", tt.services, got, tt.want)
		}
	}
	if _, err := Load(context.Background(), Options{WorkDir: dir, Services: []string{"nope"}}); !errdefs.IsNotFound(err) {
		t.Errorf("unknown service: err = %v, want not found", err)
	}
}

func TestDependencyOrderAndNames(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{"compose.yaml": `name: shop
services:
  web:
    image: busybox
    depends_on: [api, cache]
  api:
    image: busybox
    depends_on: [db]
  cache:
    image: busybox
  db:
    image: busybox
    container_name: shop-db
  builder:
    build: .
`})
	p, err := Load(context.Background(), Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.DependencyOrder(), []string{"db", "api", "builder", "cache", "web"}; !slices.Equal(got, want) {
		t.Errorf("DependencyOrder() = %v, want %v", got, want)
	}
	if got := p.ContainerName("web", 2); got != "shop-web-2" {
		t.Errorf("ContainerName(web, 2) = %s", got)
	}
	if got := p.ContainerName("db", 1); got != "shop-db" {
		t.Errorf("ContainerName(db, 1) = %s", got)
	}
	if got := p.Services["builder"].Image; got != "shop-builder" {
		t.Errorf("built image name = %s, want shop-builder", got)
	}
	if got, want := p.Images(), []string{"busybox", "shop-builder", "busybox", "busybox", "busybox"}; !slices.Equal(got, want) {
		t.Errorf("Images() = %v, want %v", got, want)
	}
}

// TestProjectCrossesTheSocket: the model survives JSON (what the daemon
// receives equals what the CLI loaded), and a project that came over the
// socket cannot be rendered, since its Compose source stayed behind.
func TestProjectCrossesTheSocket(t *testing.T) {
	t.Parallel()
	for _, c := range goldenCases(t) {
		p, err := Load(context.Background(), c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got Project
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := *p
		want.compose = nil
		if !reflect.DeepEqual(&got, &want) {
			t.Errorf("%s: project changed through JSON", c.name)
		}
		if _, err := got.Render(FormatYAML); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("%s: Render of a decoded project: err = %v, want failed precondition", c.name, err)
		}
	}
}

// TestLoadReadsNothingOfTheProcess: files, env files and the project
// directory are taken from Options.WorkDir, not the test's directory, and
// variables from Options.Environ only.
func TestLoadReadsNothingOfTheProcess(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{
		"sub/app.yaml": "services:\n  a:\n    image: busybox:${HOME:-nohome}\n    volumes: [./data:/data]\n",
	})
	p, err := Load(context.Background(), Options{WorkDir: dir, Files: []string{"sub/app.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Services["a"]
	if a.Image != "busybox:nohome" {
		t.Errorf("image = %s: HOME came from the process", a.Image)
	}
	if want := filepath.Join(dir, "sub", "data"); a.Mounts[0].Source != want {
		t.Errorf("bind source = %s, want %s", a.Mounts[0].Source, want)
	}
	if p.Name != "sub" || p.WorkingDir != filepath.Join(dir, "sub") {
		t.Errorf("project %s in %s", p.Name, p.WorkingDir)
	}
}

// TestProjectNameFromDirectory: without -p, COMPOSE_PROJECT_NAME or name:,
// the project is named after its directory, normalised as docker compose
// does (lower case, only a-z0-9_-, no leading _ or -).
func TestProjectNameFromDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "-My_App.v2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), Options{WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "my_appv2" || p.ContainerName("web", 1) != "my_appv2-web-1" || p.Networks["default"].Name != "my_appv2_default" {
		t.Errorf("project %q, container %q, network %q", p.Name, p.ContainerName("web", 1), p.Networks["default"].Name)
	}
}

// TestLoadWarnsOfSeveralComposeFiles: as docker compose, berth takes
// compose.yaml over docker-compose.yml and says so.
func TestLoadWarnsOfSeveralComposeFiles(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{
		"compose.yaml":         "services:\n  new:\n    image: busybox\n",
		"docker-compose.yml":   "services:\n  old:\n    image: busybox\n",
		"compose.override.yml": "services:\n  new:\n    command: [\"true\"]\n",
	})
	var warnings []string
	p, err := Load(context.Background(), Options{WorkDir: dir, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ServiceNames(); !slices.Equal(got, []string{"new"}) || len(p.ComposeFiles) != 2 {
		t.Errorf("services %v from %v", got, p.ComposeFiles)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "docker-compose.yml") {
		t.Errorf("warnings %q", warnings)
	}
}
