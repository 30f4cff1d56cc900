package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const invalidDir = "../testdata/manifest/invalid"

// TestLoadRejects loads each bad file of testdata/manifest/invalid and
// checks that the error says what is wrong and where: the file and line,
// the service and the key, as the user needs them to fix it. Each file
// must have a row here, so that a new file cannot go untested.
func TestLoadRejects(t *testing.T) {
	tests := []struct {
		files []string // default: the row's name + ".yaml"
		also  []string // files the others include or extend from
		name  string
		env   []string
		want  []string // fragments of the message
	}{
		{name: "syntax", want: []string{"syntax.yaml:4:13:", "invalid YAML", "mapping values are not allowed"}},
		{name: "unknown-key", want: []string{"unknown-key.yaml:4:5:", `service "web"`, "comand:", "additional properties 'comand' not allowed"}},
		{name: "unknown-top-key", want: []string{"unknown-top-key.yaml:4:1:", "volume:", "additional properties 'volume' not allowed"}},
		{name: "wrong-type", want: []string{"wrong-type.yaml:4:5:", `service "web"`, "privileged:", "invalid boolean: maybe"}},
		{name: "wrong-type-list", want: []string{"wrong-type-list.yaml:4:5:", `service "web"`, "ports:", "must be a array"}},
		{name: "wrong-type-size", want: []string{"wrong-type-size.yaml:4:5:", `service "web"`, "mem_limit:", "invalid size: 'lots'"}},
		{name: "depends-undefined", want: []string{"depends-undefined.yaml:4:5:", `service "web"`, "depends_on:", `undefined service "db"`}},
		{name: "depends-cycle", want: []string{"depends-cycle.yaml:", `service "`, "depends_on:", "dependency cycle detected:", "api", "db", "web"}},
		{name: "port-invalid", want: []string{"port-invalid.yaml:6:9:", `service "web"`, "ports.1:", "invalid IP address"}},
		{name: "port-not-a-number", want: []string{"port-not-a-number.yaml:6:13:", `service "api"`, "ports.0:", "invalid hostPort: http"}},
		{name: "port-out-of-range", want: []string{"port-out-of-range.yaml:4:13:", `service "web"`, "ports.0:", "invalid hostPort: 70000"}},
		{name: "volume-empty", want: []string{"volume-empty.yaml:6:9:", `service "web"`, "volumes.1:", "invalid empty volume spec"}},
		{name: "volume-no-target", want: []string{"volume-no-target.yaml:5:9:", `service "web"`, "volumes.0:", "missing a mount target"}},
		{name: "volume-undefined", want: []string{"volume-undefined.yaml:4:5:", `service "web"`, "volumes:", "undefined volume data"}},
		{name: "required-variable", want: []string{"required-variable.yaml:3:5:", `service "web"`, "image:", "required variable TAG is missing a value: set TAG to the image tag"}},
		{name: "network-undefined", want: []string{"network-undefined.yaml:4:5:", `service "web"`, "networks:", "undefined network back"}},
		{name: "no-image", want: []string{"no-image.yaml:2:3:", `service "web"`, "neither an image nor a build context"}},
		{name: "container-name-scale", want: []string{"container-name-scale.yaml:4:5:", `service "web"`, "container_name:", "container name must be unique"}},
		{name: "env-file-missing", want: []string{"env-file-missing.yaml:4:16:", `service "web"`, "env_file.0:", "missing.env not found"}},
		{name: "extends-cycle", want: []string{"extends-cycle.yaml:", `service "`, "extends:", "Circular reference"}},
		// compose-go panics on it (docker compose too); berth says so.
		{name: "compose-go-panic", want: []string{"compose-go-panic.yaml:", "compose-go could not read this file", "panicked"}},
		{name: "empty", want: []string{"empty.yaml:", "empty compose file"}},
		{name: "include-bad-port", also: []string{"include-bad-port.included.yaml"},
			want: []string{"include-bad-port.included.yaml:5:13:", `service "db"`, "ports.0:", "invalid hostPort: 99999"}},
		{name: "extends-syntax", also: []string{"extends-syntax.base.yaml"},
			want: []string{"extends-syntax.base.yaml:5:14:", "did not find expected ',' or ']'"}},
		{name: "override-bad-port", files: []string{"base.yaml", "override-bad-port.yaml"},
			want: []string{"override-bad-port.yaml:5:9:", `service "web"`, "ports.1:", "invalid hostPort: 99999"}},

		// What berth refuses where docker compose would go on.
		{name: "secret-uid-name", want: []string{"secret-uid-name.yaml:", `service "web": secrets.0.uid:`, `uid "alice" is not a number`}},
		{name: "enable-ipv6", want: []string{"enable-ipv6.yaml:7:5:", "networks.v6.enable_ipv6:", "IPv6 networks are not supported yet"}},
		{name: "ipv6-address", want: []string{"ipv6-address.yaml:6:9:", `service "web"`, "networks.front.ipv6_address:", "not supported yet"}},
		{name: "network-driver", want: []string{"network-driver.yaml:7:5:", "networks.mesh.driver:", `"overlay" is not supported`}},
		{name: "volume-driver", want: []string{"volume-driver.yaml:7:5:", "volumes.data.driver:", `"rexray" is not supported`}},
		{name: "x-berth-unknown", want: []string{"x-berth-unknown.yaml:5:7:", `service "web"`, "x-berth.linkenv:", "unknown key"}},
		{name: "hooks", want: []string{"hooks.yaml:4:5:", `service "web"`, "post_start:", "lifecycle hooks are not supported yet"}},
	}
	dir, err := filepath.Abs(invalidDir)
	if err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)
	t.Cleanup(func() {
		// nothing created: no bind source, no env file, nothing
		if after := listTree(t, dir); !slices.Equal(before, after) {
			t.Errorf("loading bad files changed %s:\nbefore %v\nafter  %v", dir, before, after)
		}
	})

	covered := map[string]bool{}
	for _, tt := range tests {
		files := tt.files
		if files == nil {
			files = []string{tt.name + ".yaml"}
		}
		for _, f := range append(files, tt.also...) {
			covered[f] = true
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Load(context.Background(), Options{Files: files, WorkDir: dir, Environ: tt.env})
			if err == nil {
				t.Fatalf("loaded %v: %d services, want an error", files, len(p.Services))
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error is not invalid-argument: %v", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not a *manifest.Error: %T %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !covered[e.Name()] {
			t.Errorf("%s/%s has no row in TestLoadRejects", invalidDir, e.Name())
		}
	}
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestLoadReportsEveryRefusal: several things berth refuses in one project
// are all reported, each with its place, not only the first.
func TestLoadReportsEveryRefusal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	compose := `services:
  web:
    image: busybox
    networks: [v6]
    post_start:
      - command: ["true"]
  api:
    image: busybox
    x-berth:
      link_env: "yes"
networks:
  v6:
    enable_ipv6: true
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(context.Background(), Options{WorkDir: dir})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"compose.yaml:13:5: networks.v6.enable_ipv6:",
		`compose.yaml:5:5: service "web": post_start:`,
		`compose.yaml:10:7: service "api": x-berth.link_env: must be a boolean`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}
