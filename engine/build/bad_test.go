package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/internal/progress"
)

// TestBadInputFailsClearlyAndTagsNothing builds broken Dockerfiles and
// contexts: each fails with an error that says what and where, and
// neither moves an existing tag nor makes a new one.
func TestBadInputFailsClearlyAndTagsNothing(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	ctx := context.Background()
	if err := e.Images.Tag(ctx, "busybox", "keep:1"); err != nil {
		t.Fatal(err)
	}
	before, _ := e.Images.Resolve(ctx, "keep:1")
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside the context\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		dockerfile string
		files      map[string]string
		opts       build.Options
		want       []string // in the error
		class      func(error) bool
	}{
		{
			name: "syntax error", dockerfile: "FROM busybox\nRUN echo ok\nHEALTHCHECK --interval=x CMD true\n",
			want: []string{"Dockerfile:3"}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "unknown instruction", dockerfile: "FROM busybox\nRUN true\nCOPPY a /a\n",
			want: []string{"Dockerfile:3", "unknown instruction: COPPY"}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "missing COPY source", dockerfile: "FROM busybox\nCOPY missing.txt /x\n",
			want: []string{"Dockerfile:2", `COPY missing.txt`, `"missing.txt": not found in the build context`}, class: errdefs.IsNotFound,
		},
		{
			name: "wildcard matching nothing", dockerfile: "FROM busybox\nCOPY *.none /x/\n",
			want: []string{"Dockerfile:2", `"*.none" matches no file`}, class: errdefs.IsNotFound,
		},
		{
			name: "failing RUN", dockerfile: "FROM busybox\nRUN echo about to fail; echo on stderr >&2; exit 3\n",
			want:  []string{"Dockerfile:2", "[2/2] RUN echo about to fail", "exit code: 3", "about to fail\non stderr"},
			class: errdefs.IsFailedPrecondition,
		},
		{
			name: "symlink out of the context", dockerfile: "FROM busybox\nCOPY link /x\n",
			files: map[string]string{"link": "->" + outside},
			want:  []string{"Dockerfile:2", `"link" leads outside the build context through a symlink`}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "relative symlink out of the context", dockerfile: "FROM busybox\nCOPY dir/up/secret /x\n",
			files: map[string]string{"dir/up": "->../../" + filepath.Base(filepath.Dir(outside))},
			want:  []string{"Dockerfile:2", "leads outside the build context"}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "several sources into a file", dockerfile: "FROM busybox\nCOPY a b /x\n", files: map[string]string{"a": "", "b": ""},
			want: []string{"Dockerfile:2", "the destination must be a directory and end with a /"}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "unknown user", dockerfile: "FROM busybox\nUSER ghost\nRUN true\n",
			want: []string{"Dockerfile:3", "unable to find user ghost"}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "unknown target", dockerfile: "FROM busybox AS one\nRUN true\n", opts: build.Options{Target: "two"},
			want: []string{`target stage "two" could not be found`}, class: errdefs.IsInvalidArgument,
		},
		{
			name: "base image nowhere", dockerfile: "FROM localhost:1/nothing:here\nRUN true\n",
			want: []string{"Dockerfile:1", "FROM localhost:1/nothing:here"},
		},
		{
			name: "COPY from a later stage", dockerfile: "FROM busybox AS first\nCOPY --from=later /a /a\nFROM busybox AS later\n",
			opts: build.Options{Target: "first"},
			want: []string{"Dockerfile:2", "stage later is not defined before this one"}, class: errdefs.IsInvalidArgument,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newContext(t, tc.dockerfile, tc.files)
			opts := tc.opts
			opts.Tags = []string{"keep:1", "new:1"}
			_, rec, err := doBuild(t, e, dir, opts)
			if err == nil {
				t.Fatal("the build worked")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.class != nil && !tc.class(err) {
				t.Errorf("error %v has the wrong class", err)
			}
			if after, err := e.Images.Resolve(ctx, "keep:1"); err != nil || after.ID != before.ID {
				t.Errorf("keep:1 moved to %s (%v)", after.ID, err)
			}
			if _, err := e.Images.Resolve(ctx, "new:1"); !errdefs.IsNotFound(err) {
				t.Errorf("new:1 exists after a failed build (%v)", err)
			}
			if tc.name == "failing RUN" {
				var re *build.RunError
				if !errors.As(err, &re) || re.ExitCode != 3 {
					t.Errorf("error %v: want a RunError with exit code 3", err)
				}
				failed := false
				for _, ev := range rec.events {
					failed = failed || ev.Status == progress.Error && strings.Contains(ev.ID, "RUN echo about to fail")
				}
				if !failed {
					t.Error("no error event for the failed step")
				}
			}
		})
	}
}

func TestSymlinksInsideTheContextAreCopiedAsLinks(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, "FROM busybox\nCOPY tree /tree\nCOPY to-file /followed\nRUN readlink /tree/abs && readlink /tree/rel && cat /followed\n", map[string]string{
		"tree/abs":  "->/etc/passwd",
		"tree/rel":  "->../real.txt",
		"real.txt":  "real\n",
		"to-file":   "->real.txt",
		"tree/x.md": "x",
	})
	_, rec := mustBuild(t, e, dir, build.Options{})
	if out := rec.output(); out != "/etc/passwd\n../real.txt\nreal\n" {
		t.Errorf("output %q", out)
	}
}
