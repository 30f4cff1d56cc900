package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of berth's own outputs (not those recorded from docker compose)")

const configCases = "../../testdata/manifest/config"

// configInvocation is one line of a case's `cases` file (see
// testdata/manifest/record.sh for the format).
type configInvocation struct {
	name   string
	dir    string // run here, relative to the case
	stdin  string // file, relative to the case
	sorted bool   // compare sorted lines
	berth  bool   // berth's own output, written by -update
	env    []string
	args   []string
}

func readConfigCases(t *testing.T, dir string) (env []string, invs []configInvocation) {
	t.Helper()
	env = readLines(t, filepath.Join(dir, "env"))
	for _, line := range readLines(t, filepath.Join(dir, "cases")) {
		header, args, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s/cases: no ': ' in %q", dir, line)
		}
		words := strings.Fields(header)
		inv := configInvocation{name: words[0], args: strings.Fields(args)}
		for _, w := range words[1:] {
			switch {
			case strings.HasPrefix(w, "@"):
				inv.dir = w[1:]
			case strings.HasPrefix(w, "<"):
				inv.stdin = w[1:]
			case w == "sorted":
				inv.sorted = true
			case w == "berth":
				inv.berth = true
			case strings.Contains(w, "="):
				inv.env = append(inv.env, w)
			default:
				t.Fatalf("%s/cases: bad word %q", dir, w)
			}
		}
		invs = append(invs, inv)
	}
	return env, invs
}

// readLines are a file's lines without blanks and # comments; none if
// the file does not exist.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// runBerth runs the berth CLI in-process as a user would in dir, with
// exactly the environment env.
func runBerth(t *testing.T, dir string, env []string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	ctx := withInvocation(context.Background(), invocation{environ: env, workDir: dir, stdin: stdin, stderr: &errOut})
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestConfigMatchesDockerCompose runs `berth config` over the cases of
// testdata/manifest/config and compares its output with what docker
// compose v5.5.0 printed for the same files, flags and environment
// (recorded by testdata/manifest/record.sh). Where berth's output is its
// own (--hash), the golden file is berth's, rewritten with -update.
//
// Where berth differs from the reference on purpose:
//   - --services, --volumes, --networks and --images: docker compose
//     prints them in Go map order, which changes from run to run; berth
//     prints them sorted (services: dependencies first, then by name). The
//     cases marked `sorted` compare sorted lines.
//   - --hash prints berth's config hash, which covers only what needs a new
//     container (manifest/hash.go); docker compose hashes its whole model.
//   - files with what berth cannot run (enable_ipv6, ...) are refused,
//     where docker compose prints them: see manifest's TestLoadRejects.
func TestConfigMatchesDockerCompose(t *testing.T) {
	root, err := filepath.Abs(configCases)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		caseDir := filepath.Join(root, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			env, invs := readConfigCases(t, caseDir)
			for _, inv := range invs {
				t.Run(inv.name, func(t *testing.T) {
					var stdin io.Reader
					if inv.stdin != "" {
						b, err := os.ReadFile(filepath.Join(caseDir, inv.stdin))
						if err != nil {
							t.Fatal(err)
						}
						stdin = bytes.NewReader(b)
					}
					environ := append(slices.Clone(env), inv.env...)
					out, stderr, err := runBerth(t, filepath.Join(caseDir, inv.dir), environ, stdin, inv.args...)
					if err != nil {
						t.Fatalf("berth %s: %v\n%s", strings.Join(inv.args, " "), err, stderr)
					}
					got := strings.ReplaceAll(out, caseDir, "@DIR@")
					if inv.sorted {
						got = sortLines(got)
					}
					golden := filepath.Join(caseDir, inv.name+".golden")
					if inv.berth && *update {
						if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Fatalf("%v (record it with testdata/manifest/record.sh, or -update for berth's own)", err)
					}
					if got != string(want) {
						t.Errorf("berth %s differs from %s (-want +got):\n%s", strings.Join(inv.args, " "), golden,
							cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got, "\n")))
					}
				})
			}
		})
	}
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
