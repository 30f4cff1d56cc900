package build_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// benchEngine opens an engine on a fresh root for a benchmark, with a
// busybox image as "busybox".
func benchEngine(b *testing.B) *engine.Engine {
	b.Helper()
	testutil.RequireRoot(b)
	root := testutil.StateRoot(b)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	e, err := engine.Open(ctx, engine.Options{Root: root, Binary: self})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		e.Containers.ShutdownMonitor(ctx)
		e.Close()
	})
	layer, _ := imagetest.BusyboxLayer(b)
	if _, err := e.Images.Import(ctx, bytes.NewReader(layer), image.ImportOptions{Reference: "busybox"}); err != nil {
		b.Fatal(err)
	}
	return e
}

// fiveSteps is the benchmark's Dockerfile: FROM, two RUNs, a COPY and a
// WORKDIR, plus metadata. NONCE makes every step after the first RUN new.
const fiveSteps = `FROM busybox
ARG NONCE
RUN echo "$NONCE" > /nonce && mkdir -p /app
COPY src/ /app/src/
WORKDIR /app
RUN find src -type f | wc -l > /app/count
ENV MODE=prod
CMD ["cat", "/app/count"]
`

func fiveStepContext(b *testing.B) string {
	dir := b.TempDir()
	files := map[string]string{"Dockerfile": fiveSteps}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf("src/pkg%d/file%d.go", i%4, i)] = fmt.Sprintf("package pkg%d\n\nconst N%d = %d\n", i%4, i, i)
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkBuildCold5Steps builds the five-step Dockerfile with every
// step new (the base image is in the store, as for a cold build on a
// machine that has it).
func BenchmarkBuildCold5Steps(b *testing.B) {
	e := benchEngine(b)
	dir := fiveStepContext(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.Builder.Build(ctx, build.Options{Context: dir, Tags: []string{"bench:cold"}, Args: map[string]string{"NONCE": fmt.Sprint(i)}})
		if err != nil {
			b.Fatal(err)
		}
		if res.Cached != 0 {
			b.Fatalf("a cold build found %d steps in the cache", res.Cached)
		}
	}
}

// BenchmarkBuildCached5Steps rebuilds the five-step Dockerfile with
// nothing changed.
func BenchmarkBuildCached5Steps(b *testing.B) {
	e := benchEngine(b)
	dir := fiveStepContext(b)
	ctx := context.Background()
	opts := build.Options{Context: dir, Tags: []string{"bench:cached"}, Args: map[string]string{"NONCE": "1"}}
	if _, err := e.Builder.Build(ctx, opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.Builder.Build(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if res.Cached != res.Steps {
			b.Fatalf("a rebuild ran %d steps", res.Steps-res.Cached)
		}
	}
}

// BenchmarkCopy200MB copies a 200 MB context (20 files of 10 MB of random
// data, which gzip cannot shrink) into an image: hash, copy, layer tar,
// compress, store and unpack. Each run changes one small file, so every
// layer is new.
func BenchmarkCopy200MB(b *testing.B) {
	e := benchEngine(b)
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY data/ /data/\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	chunk := make([]byte, 10<<20)
	for i := 0; i < 20; i++ {
		rand.Read(chunk)
		if err := os.WriteFile(filepath.Join(dir, "data", fmt.Sprintf("blob%02d", i)), chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.SetBytes(200 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.WriteFile(filepath.Join(dir, "data", "nonce"), []byte(fmt.Sprint(i)), 0o644)
		b.StartTimer()
		if _, err := e.Builder.Build(ctx, build.Options{Context: dir, Tags: []string{"bench:copy"}}); err != nil {
			b.Fatal(err)
		}
	}
}
