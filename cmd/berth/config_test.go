package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/testutil"
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

func readLines(t *testing.T, path string) []string { return testutil.ReadLines(t, path) }

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

// TestConfigFlags covers what the reference outputs do not: validation
// only, writing to a file, and the flags berth answers with an error.
func TestConfigFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	compose := "services:\n  web:\n    image: busybox:1.36\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, _, err := runBerth(t, dir, nil, nil, args...)
		return out, err
	}

	if out, err := run("config", "-q"); err != nil || out != "" {
		t.Errorf("config -q: %q, %v; want nothing", out, err)
	}
	if out, err := run("config", "-o", "out.yaml"); err != nil || out != "" {
		t.Errorf("config -o: %q, %v; want nothing on stdout", out, err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "out.yaml"))
	if err != nil || !strings.Contains(string(written), "image: busybox:1.36") {
		t.Errorf("config -o out.yaml wrote %q, %v", written, err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "--format", "toml"}, `unsupported format "toml"`},
		{[]string{"config", "--resolve-image-digests"}, "not implemented yet"},
		{[]string{"config", "--hash", "web,nope"}, "no such service: nope"},
		{[]string{"config", "nope"}, "no such service: nope"},
		{[]string{"-p", "Bad Name", "config"}, "invalid project name"},
		{[]string{"-f", "missing.yaml", "config"}, "missing.yaml"},
	} {
		out, err := run(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
			t.Errorf("berth %s: out %q, err %v; want an error saying %q", strings.Join(tt.args, " "), out, err, tt.want)
		}
	}
}

// TestConfigRejectsBadFile runs the berth binary on a bad file: the error
// names the file, line, service and key, the exit status is 1, and nothing
// is created (not even the state root).
func TestConfigRejectsBadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	compose := "services:\n  web:\n    image: busybox\n    ports: [\"8080:80\", \"1.2.3.4:80:80:80\"]\n    volumes: [\"./data:/data\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "state")
	cmd := exec.Command(testutil.BerthBinary(t), "--root", root, "--host", "unix://"+filepath.Join(dir, "sock"), "config")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	want := filepath.Join(dir, "compose.yaml") + `:4:24: service "web": ports.1: invalid IP address`
	if !strings.Contains(stderr.String(), want) || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want %q", stdout.String(), stderr.String(), want)
	}
	for _, p := range []string{root, filepath.Join(dir, "data"), filepath.Join(dir, "sock")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a rejected config", p)
		}
	}
}
