package build_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/enginetest"
	"github.com/berth-dev/berth/engine/image/imagetest"
)

func TestMultiStageBusyboxBuildRuns(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, `ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
WORKDIR /src
COPY greet.sh ./
RUN chmod +x greet.sh && ./greet.sh "$GREETING" > /out.txt
RUN <<EOF
echo from a heredoc > /heredoc.txt
EOF

FROM ${BASE}
ARG GREETING
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group
COPY --from=builder --chown=app:app /out.txt /heredoc.txt /data/
COPY <<EOF /etc/app.conf
name=$GREETING
EOF
SHELL ["/bin/sh", "-e", "-c"]
RUN test "$(cat /etc/app.conf)" = "name=$GREETING"
USER app
WORKDIR /home/app/work
ENV MODE=prod
HEALTHCHECK --interval=5s --retries=2 CMD cat /data/out.txt
EXPOSE 8080 9000-9001/udp
LABEL org.example.kind=test
STOPSIGNAL SIGINT
CMD ["sh", "-c", "cat /data/out.txt /data/heredoc.txt /etc/app.conf; id -u; stat -c %u:%g /data/out.txt; pwd; echo $MODE"]
`, map[string]string{"greet.sh": "#!/bin/sh\necho \"$1 from the builder\"\n"})
	res, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"multi:1"}, Args: map[string]string{"GREETING": "bonjour"}, Name: "web"})
	if res.Cached != 0 || res.Steps != 9 {
		t.Errorf("cold build: %d steps, %d cached; want 9 and 0", res.Steps, res.Cached)
	}
	steps := rec.steps()
	for _, name := range []string{"[web builder 4/5] RUN chmod +x greet.sh && ./greet.sh \"$GREETING\" > /out.txt", "[web stage-1 3/6] COPY --from=builder --chown=app:app /out.txt /heredoc.txt /data/"} {
		if !strings.HasPrefix(steps[name], build.TextDone) {
			t.Errorf("step %q: %q; steps: %v", name, steps[name], steps)
		}
	}
	code, out := runImage(t, e, "multi:1")
	want := "bonjour from the builder\nfrom a heredoc\nname=bonjour\n1234\n1234:1234\n/home/app/work\nprod\n"
	if code != 0 || out != want {
		t.Fatalf("the image ran with %d:\n%s\nwant\n%s", code, out, want)
	}
	img, err := e.Images.Resolve(context.Background(), "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := img.Config.Config
	if cfg.User != "app" || cfg.WorkingDir != "/home/app/work" || cfg.StopSignal != "SIGINT" || cfg.Labels["org.example.kind"] != "test" {
		t.Errorf("config: %+v", cfg)
	}
	if h := cfg.Healthcheck; h == nil || h.Interval != 5*time.Second || h.Retries != 2 || strings.Join(h.Test, " ") != "CMD-SHELL cat /data/out.txt" {
		t.Errorf("healthcheck: %+v", h)
	}
	for _, p := range []string{"8080/tcp", "9000/udp", "9001/udp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed: %v", p, cfg.ExposedPorts)
		}
	}
	if !slices.Contains(cfg.Env, "MODE=prod") || slices.ContainsFunc(cfg.Env, func(s string) bool { return strings.HasPrefix(s, "GREETING=") }) {
		t.Errorf("env %v: want MODE, and no build arg", cfg.Env)
	}
	layers := 0
	for _, h := range img.Config.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if layers != len(img.Layers) {
		t.Errorf("%d history entries with a layer, %d layers", layers, len(img.Layers))
	}
	// The RUN step that only tests something made no layer.
	hist, err := e.Images.History(context.Background(), "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if strings.Contains(h.CreatedBy, "RUN |1 GREETING=bonjour /bin/sh -e -c test") && !h.EmptyLayer {
			t.Errorf("a RUN that changed nothing made a layer: %+v", h)
		}
	}
}

const helloProgram = `package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "write" {
		if err := os.WriteFile("/written.txt", []byte("written at build time\n"), 0o644); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("wrote /written.txt")
		return
	}
	msg, _ := os.ReadFile("/etc/message")
	written, _ := os.ReadFile("/written.txt")
	fmt.Printf("hello from a static program: %s %s%s%q\n", os.Getenv("GREETING"), msg, written, os.Args[1:])
}
`

func TestFromScratchWithAStaticGoProgram(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	dir := newContext(t, `FROM scratch AS base
COPY hello /bin/hello
RUN ["/bin/hello", "write"]

FROM scratch
COPY --from=base /bin/hello /written.txt /
COPY message.txt /etc/message
ENV GREETING=hi
ENTRYPOINT ["/hello"]
CMD ["one", "two"]
`, map[string]string{"message.txt": "from the context\n"})
	staticProgram(t, dir, "hello", helloProgram)
	_, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"scratch:1"}})
	if !strings.Contains(rec.output(), "wrote /written.txt") {
		t.Errorf("RUN output not streamed: %q", rec.output())
	}
	code, out := runImage(t, e, "scratch:1")
	want := "hello from a static program: hi from the context\nwritten at build time\n[\"one\" \"two\"]\n"
	if code != 0 || out != want {
		t.Fatalf("ran with %d: %q, want %q", code, out, want)
	}
	if _, out := runImage(t, e, "scratch:1", "three"); !strings.HasSuffix(out, "[\"three\"]\n") {
		t.Errorf("CMD override: %q", out)
	}
	// The RUN on scratch left only its file: no /proc, /dev, /etc/hosts...
	img, err := e.Images.Resolve(context.Background(), "scratch:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 2 {
		t.Fatalf("%d layers, want 2 (the two COPYs)", len(img.Layers))
	}
	p, err := e.Images.SnapshotPath(img.Layers[0].DiffID)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(t, p), " ")
	if got != "hello written.txt" {
		t.Errorf("first layer holds %s", got)
	}
}

// names lists a directory tree's paths, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			r, _ := filepath.Rel(dir, p)
			out = append(out, r)
		}
		return nil
	})
	return out
}

func TestCacheHitsAndMisses(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, `FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt > /copy-a
COPY b.txt /b.txt
ARG VERSION=1
RUN echo "$VERSION" > /version
RUN cat /b.txt >> /copy-a
CMD ["sh", "-c", "cat /copy-a /version"]
`, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	opts := build.Options{Tags: []string{"cache:1"}}
	first, _ := mustBuild(t, e, dir, opts)
	if first.Steps != 5 || first.Cached != 0 {
		t.Fatalf("cold: %+v", first)
	}
	imagesBefore, _ := e.Images.List(context.Background(), imageListAll)

	// Nothing changed: every step from the cache, the same image, nothing new in the store.
	again, rec := mustBuild(t, e, dir, opts)
	if again.Cached != 5 || again.ImageID != first.ImageID {
		t.Fatalf("rebuild: %+v (first %s); steps %v", again, first.ImageID, rec.steps())
	}
	if imagesAfter, _ := e.Images.List(context.Background(), imageListAll); len(imagesAfter) != len(imagesBefore) {
		t.Errorf("a cached build added images: %d -> %d", len(imagesBefore), len(imagesAfter))
	}

	// A touched file with the same content is the same file.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "a.txt"), future, future)
	if r, _ := mustBuild(t, e, dir, opts); r.Cached != 5 || r.ImageID != first.ImageID {
		t.Errorf("touching a.txt: %+v", r)
	}

	// Change b.txt: the steps before its COPY come from the cache.
	writeTree(t, dir, map[string]string{"b.txt": "B2\n"})
	changed, rec := mustBuild(t, e, dir, opts)
	assertSteps(t, rec, map[string]string{
		"[2/6] COPY a.txt /a.txt": build.TextCached, "[3/6] RUN cat /a.txt > /copy-a": build.TextCached,
		"[4/6] COPY b.txt /b.txt": build.TextDone, "[5/6] RUN echo \"$VERSION\" > /version": build.TextDone,
		"[6/6] RUN cat /b.txt >> /copy-a": build.TextDone,
	})
	if changed.Cached != 2 {
		t.Errorf("after changing b.txt: %+v", changed)
	}
	if _, out := runImage(t, e, "cache:1"); out != "A\nB2\n1\n" {
		t.Errorf("image after the change prints %q", out)
	}

	// A build arg reruns the RUN steps that see it, and not the COPY before.
	opts.Args = map[string]string{"VERSION": "2"}
	_, rec = mustBuild(t, e, dir, opts)
	assertSteps(t, rec, map[string]string{
		"[4/6] COPY b.txt /b.txt": build.TextCached, "[5/6] RUN echo \"$VERSION\" > /version": build.TextDone,
		"[6/6] RUN cat /b.txt >> /copy-a": build.TextDone,
	})
	// A build arg no ARG declares changes nothing, and is reported.
	opts.Args = map[string]string{"VERSION": "2", "NOBODY": "x"}
	r, rec := mustBuild(t, e, dir, opts)
	if r.Cached != 5 {
		t.Errorf("an undeclared build arg reran steps: %+v", r)
	}
	if !rec.has("[NOBODY] were not consumed") {
		t.Error("no warning for an unused build arg")
	}

	// --no-cache runs everything, and makes the same image.
	opts.NoCache = true
	nc, _ := mustBuild(t, e, dir, opts)
	if nc.Cached != 0 || nc.ImageID != r.ImageID {
		t.Errorf("--no-cache: %+v, want 0 cached and image %s", nc, r.ImageID)
	}
}

func assertSteps(t *testing.T, rec *recorder, want map[string]string) {
	t.Helper()
	got := rec.steps()
	for name, text := range want {
		if !strings.HasPrefix(got[name], text) {
			t.Errorf("step %s: %q, want %s", name, got[name], text)
		}
	}
}

func TestSameDigestsInTwoCleanStores(t *testing.T) {
	t.Parallel()
	dockerfile := `FROM base
RUN mkdir -p /app/data && echo hi > /app/data/f && touch /app/empty && ln -s data/f /app/link && rm /etc/motd
COPY src/ /app/src/
WORKDIR /app
ENV A=1
CMD ["cat", "/app/data/f"]
`
	files := map[string]string{"src/a.go": "package a\n", "src/sub/b.txt": "b\n"}
	var results []build.Result
	for i, epoch := range []*int64{nil, nil} {
		e := enginetest.Open(t)
		layer, _ := imagetest.BusyboxLayer(t)
		if _, err := e.Images.Create(context.Background(), imageCreate(layer, "base")); err != nil {
			t.Fatal(err)
		}
		// Each store builds its own copy of the context, made at another
		// time: only content counts.
		dir := newContext(t, dockerfile, files)
		if i == 1 {
			past := time.Now().Add(-48 * time.Hour)
			filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error { return os.Chtimes(p, past, past) })
		}
		r, _ := mustBuild(t, e, dir, build.Options{Tags: []string{"repro:1"}, SourceDateEpoch: epoch})
		results = append(results, r)
		if i == 1 {
			var sde int64 = 1700000000
			withEpoch, _ := mustBuild(t, e, dir, build.Options{Tags: []string{"repro:2"}, SourceDateEpoch: &sde})
			if withEpoch.ImageID == r.ImageID {
				t.Error("SOURCE_DATE_EPOCH did not change the image")
			}
			img, err := e.Images.Resolve(context.Background(), "repro:2")
			if err != nil {
				t.Fatal(err)
			}
			if !img.Created.Equal(time.Unix(sde, 0)) {
				t.Errorf("created %v, want SOURCE_DATE_EPOCH", img.Created)
			}
			img1, _ := e.Images.Resolve(context.Background(), "repro:1")
			if !img1.Created.Equal(time.Unix(0, 0)) {
				t.Errorf("created %v, want the Unix epoch", img1.Created)
			}
		}
	}
	if results[0].ImageID != results[1].ImageID || results[0].Digest != results[1].Digest {
		t.Fatalf("two clean stores built different images:\n %+v\n %+v", results[0], results[1])
	}
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, `FROM busybox
COPY . /ctx
RUN cd /ctx && find . | sort
`, map[string]string{
		".dockerignore":          "# secrets and noise\n*.env\nlogs\n!logs/keep.log\nnode_modules\n**/*.md\n/Dockerfile\n",
		"a.txt":                  "a",
		"secret.env":             "TOKEN=1",
		"logs/x.log":             "x",
		"logs/keep.log":          "kept",
		"node_modules/m/main.js": "js",
		"docs/guide/readme.md":   "md",
		"docs/guide/image.png":   "png",
	})
	_, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"ignore:1"}})
	listing := rec.output()
	for _, want := range []string{"./a.txt", "./logs/keep.log", "./.dockerignore", "./docs/guide/image.png"} {
		if !strings.Contains(listing, want+"\n") {
			t.Errorf("%s missing from the image:\n%s", want, listing)
		}
	}
	for _, gone := range []string{"secret.env", "x.log", "node_modules", "readme.md", "./Dockerfile"} {
		if strings.Contains(listing, gone) {
			t.Errorf("%s was copied despite .dockerignore:\n%s", gone, listing)
		}
	}
	// An ignored file changing changes nothing; naming one is an error.
	writeTree(t, dir, map[string]string{"secret.env": "TOKEN=2", "logs/x.log": "y"})
	if r, _ := mustBuild(t, e, dir, build.Options{Tags: []string{"ignore:1"}}); r.Cached != r.Steps {
		t.Errorf("changing ignored files reran steps: %+v", r)
	}
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY secret.env /\n"})
	_, _, err := doBuild(t, e, dir, build.Options{})
	if err == nil || !strings.Contains(err.Error(), "excluded by .dockerignore") {
		t.Errorf("COPY of an ignored file: %v", err)
	}
}

func TestRunNetworkHostOrNone(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	// The host's network namespace, as a RUN step names it (links come and
	// go while other tests run, the namespace does not).
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := newContext(t, "FROM busybox\nRUN readlink /proc/self/ns/net\nRUN --network=none readlink /proc/self/ns/net && ls /sys/class/net\n", nil)
	_, rec := mustBuild(t, e, dir, build.Options{})
	lines := strings.Split(strings.TrimSpace(rec.output()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", rec.output())
	}
	if lines[0] != hostNet {
		t.Errorf("the default network is %s, the host's is %s", lines[0], hostNet)
	}
	if lines[1] == hostNet || lines[2] != "lo" {
		t.Errorf("--network=none is %s with links %q, want its own namespace with lo only", lines[1], lines[2])
	}
	// The build's own network: none; extra hosts and /dev/shm's size.
	dir = newContext(t, "FROM busybox\nRUN ls /sys/class/net && grep -w db /etc/hosts && df -k /dev/shm | tail -1 | awk '{print $2}'\n", nil)
	_, rec = mustBuild(t, e, dir, build.Options{Network: "none", ExtraHosts: []string{"db:10.1.2.3"}, ShmSize: 8 << 20})
	if out := rec.output(); out != "lo\n10.1.2.3\tdb\n8192\n" {
		t.Errorf("network none, extra hosts, shm size: %q", out)
	}
}

func TestOnbuildTriggersRunInTheChild(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	parent := newContext(t, "FROM busybox\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD RUN echo triggered > /triggered\n", nil)
	mustBuild(t, e, parent, build.Options{Tags: []string{"parent:1"}})
	child := newContext(t, "FROM parent:1\nRUN cat /trigger.txt /triggered\n", map[string]string{"trigger.txt": "from the child's context\n"})
	_, rec := mustBuild(t, e, child, build.Options{Tags: []string{"child:1"}})
	if out := rec.output(); out != "from the child's context\ntriggered\n" {
		t.Errorf("child RUN printed %q", out)
	}
	img, _ := e.Images.Resolve(context.Background(), "child:1")
	if len(img.Config.Config.OnBuild) != 0 {
		t.Errorf("the child inherited triggers: %v", img.Config.Config.OnBuild)
	}
}

func TestRunMountsCacheTmpfsAndBind(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, `FROM busybox AS tools
RUN echo tool > /tool.txt
FROM busybox
ARG N=1
RUN --mount=type=cache,target=/root/.cache echo run$N >> /root/.cache/runs && cat /root/.cache/runs
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch
RUN --mount=type=bind,source=conf,target=/conf --mount=type=bind,from=tools,source=/tool.txt,target=/tool.txt cat /conf/c.txt /tool.txt
`, map[string]string{"conf/c.txt": "conf\n"})
	_, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"mounts:1"}})
	if out := rec.output(); out != "run1\nx\nconf\ntool\n" {
		t.Errorf("output %q", out)
	}
	_, rec = mustBuild(t, e, dir, build.Options{Tags: []string{"mounts:1"}, Args: map[string]string{"N": "2"}})
	if out := rec.output(); !strings.HasPrefix(out, "run1\nrun2\n") {
		t.Errorf("the cache mount did not keep the first run's file: %q", out)
	}
	// None of the mount targets are in the image.
	code, out := runImage(t, e, "mounts:1", "sh", "-c", "ls -d /root/.cache /scratch /conf /tool.txt 2>&1; true")
	if code != 0 || strings.Count(out, "No such file") != 4 {
		t.Errorf("mount targets left in the image: %q", out)
	}
	// A changed bind-mounted file reruns the step.
	writeTree(t, dir, map[string]string{"conf/c.txt": "conf2\n"})
	_, rec = mustBuild(t, e, dir, build.Options{Tags: []string{"mounts:1"}, Args: map[string]string{"N": "2"}})
	if out := rec.output(); out != "conf2\ntool\n" {
		t.Errorf("after changing the bind source: %q", out)
	}
}

func TestLongOutputLinesAndBuildPlatform(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	// A 2.5 MB line without a newline (longer than any line buffer), then more output: the step reads it
	// all (a reader that gave up would leave the RUN blocked on its pipe).
	dir := newContext(t, "FROM --platform=$BUILDPLATFORM busybox\nRUN yes x | head -c 5000000 | tr -d '\\n'; echo; echo after\n", nil)
	_, rec := mustBuild(t, e, dir, build.Options{})
	out := rec.output()
	if !strings.HasSuffix(out, "after\n") || strings.Count(out, "x") != 2500000 {
		t.Errorf("output of %d bytes ends %q", len(out), out[max(0, len(out)-20):])
	}
	if rec.has("platform only") {
		t.Error("FROM --platform=$BUILDPLATFORM warned")
	}
}

// TestManyLayers builds, and runs, an image of more layers than one
// mount(2) call's page of overlay options holds.
func TestManyLayers(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := range 60 {
		fmt.Fprintf(&df, "RUN echo %d > /layer%02d\n", i, i)
	}
	_, _ = mustBuild(t, e, newContext(t, df.String(), nil), build.Options{Tags: []string{"deep"}})
	code, out := runImage(t, e, "deep", "sh", "-c", "cat /layer* | wc -l; cat /layer59")
	if f := strings.Fields(out); code != 0 || len(f) != 2 || f[0] != "60" || f[1] != "59" {
		t.Fatalf("exit %d, output %q: want 60 files, the last holding 59", code, out)
	}
}

// TestNamedContexts builds with Compose's additional_contexts (buildx's
// --build-context): FROM a docker-image:// context, COPY --from a
// directory context (its .dockerignore honoured, its files in the cache
// key), and a stage of the same name winning over a context.
func TestNamedContexts(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	assets := t.TempDir()
	writeTree(t, assets, map[string]string{"greeting.txt": "hello\n", "secret.key": "no\n", ".dockerignore": "*.key\n"})
	dir := newContext(t, `FROM base AS tools
RUN echo from-stage > /which

FROM base
COPY --from=assets . /assets/
COPY --from=tools /which /which
`, nil)
	opts := build.Options{Tags: []string{"named:1"}, NamedContexts: map[string]string{
		"base": "docker-image://busybox", "assets": assets, "tools": "docker-image://no-such-image",
	}}
	first, _ := mustBuild(t, e, dir, opts)
	code, out := runImage(t, e, "named:1", "sh", "-c", "cat /assets/greeting.txt /which; ls /assets")
	if code != 0 || out != "hello\nfrom-stage\ngreeting.txt\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}

	// A changed file of the context misses the cache from its COPY on.
	writeTree(t, assets, map[string]string{"greeting.txt": "bonjour\n"})
	again, rec := mustBuild(t, e, dir, opts)
	if again.ImageID == first.ImageID {
		t.Fatalf("after the change: the same image %s", again.ImageID)
	}
	assertSteps(t, rec, map[string]string{
		"[stage-1 1/3] FROM docker.io/library/busybox:latest": build.TextCached,
		"[stage-1 2/3] COPY --from=assets . /assets/":         build.TextDone,
		"[tools 2/2] RUN echo from-stage > /which":            build.TextCached,
	})
	if _, out := runImage(t, e, "named:1", "cat", "/assets/greeting.txt"); out != "bonjour\n" {
		t.Fatalf("after the change: %q", out)
	}

	// A directory cannot be built on.
	dir2 := newContext(t, "FROM assets\n", nil)
	if _, _, err := doBuild(t, e, dir2, opts); !errdefs.IsNotImplemented(err) || !strings.Contains(err.Error(), "context assets is a directory") {
		t.Fatalf("FROM a directory context: %v", err)
	}
}

// TestSecretMounts gives RUN --mount=type=secret its secret as a read-only
// file, under /run/secrets/ID or a target, with buildkit's defaults; the
// secret stays out of the image and out of the cache key.
func TestSecretMounts(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	dir := newContext(t, `FROM busybox
RUN --mount=type=secret,id=token cat /run/secrets/token > /seen; stat -c %a /run/secrets/token >> /seen
RUN --mount=type=secret,id=token,target=/etc/tok,mode=0444 cat /etc/tok >> /seen; (echo x > /etc/tok) 2>/dev/null || echo read-only >> /seen
RUN --mount=type=secret,id=absent ls /run/secrets 2>/dev/null | wc -l >> /seen
`, nil)
	opts := build.Options{Tags: []string{"secret:1"}, Secrets: map[string][]byte{"token": []byte("t0ken")}}
	first, _ := mustBuild(t, e, dir, opts)
	// Nothing of the mounts is left in the image, not even their mount points.
	code, out := runImage(t, e, "secret:1", "sh", "-c", "cat /seen; ls -a /run /etc/tok 2>&1; true")
	if code != 0 || out != "t0ken400\nt0kenread-only\n0\nls: /etc/tok: No such file or directory\n/run:\n.\n..\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	// Another value: every step from the cache.
	opts.Secrets["token"] = []byte("other")
	if again, _ := mustBuild(t, e, dir, opts); again.ImageID != first.ImageID || again.Cached != 3 {
		t.Errorf("a new secret value rebuilt: %+v", again)
	}
	// A required secret that was not given fails the step, naming it.
	dir2 := newContext(t, "FROM busybox\nRUN --mount=type=secret,id=npmrc,required true\n", nil)
	if _, _, err := doBuild(t, e, dir2, build.Options{}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "no secret npmrc was given") {
		t.Fatalf("required secret missing: %v", err)
	}
}
