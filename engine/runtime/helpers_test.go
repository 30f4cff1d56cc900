package runtime

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/testutil"
)

// newRuntime returns a Runtime over a fresh state root (StateRoot's leak
// check runs at the end), laid out as the engine lays it out: state in
// ROOT/runtime, cgroups under the root's parent cgroup.
func newRuntime(t *testing.T) (*Runtime, string) {
	t.Helper()
	testutil.RequireRoot(t)
	root := testutil.StateRoot(t)
	rt, err := New(Config{StateDir: filepath.Join(root, "runtime"), CgroupParent: rootid.CgroupParent(root)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, root
}

// bundle makes a busybox bundle under root with the default spec, changed by edit.
func bundle(t *testing.T, root string, args []string, edit func(*specs.Spec)) string {
	t.Helper()
	dir, err := os.MkdirTemp(root, "bundle-")
	if err != nil {
		t.Fatal(err)
	}
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	spec, err := DefaultSpec(SpecOptions{Args: args, Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(spec)
	}
	if err := WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// result is what a container printed and how it ended.
type result struct {
	stdout, stderr string
	status         unix.WaitStatus
}

func (r result) code() int { return r.status.ExitStatus() }

// capture is a pipe whose reading end is drained into a buffer.
type capture struct {
	w    *os.File
	buf  bytes.Buffer
	done chan struct{}
}

func newCapture(t *testing.T) *capture {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{w: pw, done: make(chan struct{})}
	go func() {
		io.Copy(&c.buf, pr)
		pr.Close()
		close(c.done)
	}()
	return c
}

// text closes the writing end (the caller's copy) and waits for EOF.
func (c *capture) text() string {
	c.w.Close()
	<-c.done
	return c.buf.String()
}

// run creates, starts and waits for a container, then deletes it.
func run(t *testing.T, rt *Runtime, id, bundle string) result {
	t.Helper()
	out, errOut := newCapture(t), newCapture(t)
	p, err := rt.Create(context.Background(), id, bundle, IO{Stdout: out.w, Stderr: errOut.w})
	if err != nil {
		out.text()
		errOut.text()
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { rt.Delete(context.Background(), id, DeleteOptions{Force: true}) })
	if err := rt.Start(context.Background(), id); err != nil {
		t.Fatalf("start: %v", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(p.Pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait: %v", err)
	}
	res := result{stdout: out.text(), stderr: errOut.text(), status: ws}
	if err := rt.Delete(context.Background(), id, DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	return res
}

// sh runs a shell script in a default busybox container and returns its result.
func sh(t *testing.T, script string, edit func(*specs.Spec)) result {
	t.Helper()
	rt, root := newRuntime(t)
	b := bundle(t, root, []string{"sh", "-c", script}, edit)
	return run(t, rt, strings.ReplaceAll(t.Name(), "/", "-"), b)
}
