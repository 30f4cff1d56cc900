package runtime

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine/runtime/seccomp"
	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// The costs of a container start that are pure computation, paid by the
// caller (seccomp compile, bootstrap encoding) or by the setup stage
// (bootstrap decoding).

func BenchmarkDefaultSpec(b *testing.B) {
	for b.Loop() {
		if _, err := DefaultSpec(SpecOptions{Args: []string{"true"}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileDefaultSeccomp(b *testing.B) {
	spec, _ := DefaultSpec(SpecOptions{Args: []string{"true"}})
	for b.Loop() {
		if _, err := seccomp.Compile(spec.Linux.Seccomp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBootstrapRoundTrip(b *testing.B) {
	spec, _ := DefaultSpec(SpecOptions{Args: []string{"true"}})
	prog, _ := seccomp.Compile(spec.Linux.Seccomp)
	boot := &bootstrap{Mode: modeContainer, Spec: withoutSeccomp(spec), Seccomp: prog.Bytes()}
	for b.Loop() {
		data, err := json.Marshal(&message{Type: msgBootstrap, Bootstrap: boot})
		if err != nil {
			b.Fatal(err)
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}

// BenchmarkRunTrue is create, start, wait and delete of busybox true, in
// process (no CLI): the runtime's own share of `berth runtime run`.
func BenchmarkRunTrue(b *testing.B) {
	testutil.RequireRoot(b)
	root := testutil.StateRoot(b)
	rt, err := New(Config{StateDir: filepath.Join(root, "runtime"), CgroupParent: rootid.CgroupParent(root)})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	dir := filepath.Join(root, "bundle")
	testutil.BusyboxRootfs(b, filepath.Join(dir, "rootfs"))
	spec, _ := DefaultSpec(SpecOptions{Args: []string{"true"}})
	if err := WriteSpec(dir, spec); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		p, err := rt.Create(ctx, "bench", dir, IO{})
		if err != nil {
			b.Fatal(err)
		}
		if err := rt.Start(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
		reap(p.Pid)
		if err := rt.Delete(ctx, "bench", DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecTrue is Exec of busybox true into a running container and
// its end: what a healthcheck costs.
func BenchmarkExecTrue(b *testing.B) {
	testutil.RequireRoot(b)
	root := testutil.StateRoot(b)
	rt, err := New(Config{StateDir: filepath.Join(root, "runtime"), CgroupParent: rootid.CgroupParent(root)})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	dir := filepath.Join(root, "bundle")
	testutil.BusyboxRootfs(b, filepath.Join(dir, "rootfs"))
	spec, _ := DefaultSpec(SpecOptions{Args: []string{"sleep", "3600"}})
	if err := WriteSpec(dir, spec); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p, err := rt.Create(ctx, "bench-exec", dir, IO{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		rt.Delete(ctx, "bench-exec", DeleteOptions{Force: true})
		reap(p.Pid)
	}()
	if err := rt.Start(ctx, "bench-exec"); err != nil {
		b.Fatal(err)
	}
	proc := proc("true")
	for b.Loop() {
		e, err := rt.Exec(ctx, "bench-exec", proc, IO{})
		if err != nil {
			b.Fatal(err)
		}
		if ws := reap(e.Pid); ws.ExitStatus() != 0 {
			b.Fatalf("true ended with %v", ws)
		}
	}
	b.StopTimer()
	// As a healthcheck's: each after a quiet spell, timed to its exec.
	var quiet time.Duration
	for range 20 {
		time.Sleep(200 * time.Millisecond)
		t0 := time.Now()
		e, err := rt.Exec(ctx, "bench-exec", proc, IO{})
		if err != nil {
			b.Fatal(err)
		}
		quiet += time.Since(t0)
		reap(e.Pid)
	}
	b.ReportMetric(float64(quiet.Microseconds())/20/1000, "ms/exec-after-quiet")
}
