package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	configCases  = "../testdata/manifest/config"
	hashesGolden = "../testdata/manifest/hashes.golden"
	// relocatedDir stands for a case's directory in the pinned hashes, so
	// that they do not depend on where the repository is checked out.
	relocatedDir = "/project"
)

// goldenCase is a case of testdata/manifest/config loaded as its `yaml`
// invocation says (the global flags of docker compose, and the services
// after `config`).
type goldenCase struct {
	name string
	dir  string
	opts Options
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	root, err := filepath.Abs(configCases)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c := goldenCase{name: e.Name(), dir: filepath.Join(root, e.Name())}
		c.opts = caseOptions(t, c.dir)
		cases = append(cases, c)
	}
	return cases
}

// caseOptions reads the `yaml:` line of a case's `cases` file (format in
// testdata/manifest/record.sh) into Options.
func caseOptions(t *testing.T, dir string) Options {
	t.Helper()
	opts := Options{WorkDir: dir, Environ: fileLines(t, filepath.Join(dir, "env"))}
	for _, line := range fileLines(t, filepath.Join(dir, "cases")) {
		header, args, _ := strings.Cut(line, ": ")
		words := strings.Fields(header)
		if words[0] != "yaml" {
			continue
		}
		for _, w := range words[1:] {
			switch {
			case strings.HasPrefix(w, "@"):
				opts.WorkDir = filepath.Join(dir, w[1:])
			case strings.HasPrefix(w, "<"):
				b, err := os.ReadFile(filepath.Join(dir, w[1:]))
				if err != nil {
					t.Fatal(err)
				}
				opts.Stdin = bytes.NewReader(b)
			case strings.Contains(w, "="):
				opts.Environ = append(opts.Environ, w)
			}
		}
		argv := strings.Fields(args)
		for i := 0; i < len(argv); i++ {
			next := func() string { i++; return argv[i] }
			switch argv[i] {
			case "-f", "--file":
				opts.Files = append(opts.Files, next())
			case "-p", "--project-name":
				opts.ProjectName = next()
			case "--profile":
				opts.Profiles = append(opts.Profiles, next())
			case "--env-file":
				opts.EnvFiles = append(opts.EnvFiles, next())
			case "--project-directory":
				opts.ProjectDirectory = next()
			case "config":
			default:
				if strings.HasPrefix(argv[i], "-") {
					t.Fatalf("%s: yaml line: flag %s not understood here", dir, argv[i])
				}
				opts.Services = append(opts.Services, argv[i])
			}
		}
		return opts
	}
	t.Fatalf("%s/cases has no yaml: line", dir)
	return opts
}

func fileLines(t *testing.T, path string) []string { return testutil.ReadLines(t, path) }

// relocate is p with the case directory dir replaced by to, through the
// JSON that crosses the API socket, and its config hashes computed again
// (bind mounts' sources are in them).
func relocate(t *testing.T, p *Project, dir, to string) *Project {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(dir), []byte(to))
	var out Project
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for name, s := range out.Services {
		s.ConfigHash = ConfigHash(s)
		out.Services[name] = s
	}
	return &out
}

// TestModelGolden pins berth's model of each case: what the daemon
// receives. Rewrite with -update after a deliberate change, and read the
// diff.
func TestModelGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := Load(context.Background(), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(relocate(t, p, c.dir, "@DIR@"), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, filepath.Join(c.dir, "model.golden.json"), string(b)+"\n")
		})
	}
}

// TestConfigHashesGolden pins the config hash of every service of the
// cases, so that a change of compose-go, of the conversion or of the hash
// that would recreate users' containers fails here first. The cases are
// relocated to /project, so the hashes do not depend on the checkout.
func TestConfigHashesGolden(t *testing.T) {
	var lines []string
	for _, c := range goldenCases(t) {
		p, err := Load(context.Background(), c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p = relocate(t, p, c.dir, relocatedDir)
		for _, name := range p.ServiceNames() {
			s := p.Services[name]
			if s.ConfigHash == "" {
				t.Errorf("%s: service %s has no config hash", c.name, name)
			}
			lines = append(lines, fmt.Sprintf("%s %s %s", c.name, name, ConfigHash(s)))
		}
	}
	slices.Sort(lines)
	compareGolden(t, hashesGolden, strings.Join(lines, "\n")+"\n")
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	testutil.Golden(t, path, []byte(got), *update)
}
