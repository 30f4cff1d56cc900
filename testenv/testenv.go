// Package testenv brings a Compose project up with berth for the length of
// a Go test, and takes it down when the test ends: the test environments
// that testcontainers' compose module gives on Docker, on berth.
//
//	func TestCheckout(t *testing.T) {
//		env := testenv.Up(t, "../deploy", testenv.Isolated())
//		api := "http://" + env.Addr("api", 8080) // the published port on the host
//		...
//	}
//
// By default the project runs on the machine's berth daemon (the state
// root and socket of BERTH_ROOT and BERTH_HOST, else berth's defaults),
// under a project name of its own, so parallel tests and the user's own
// projects never meet. Isolated gives the test a state root and daemon of
// its own instead, stopped at the end, so nothing at all outlives the test.
//
// berth itself must be on PATH, or named by BERTH_BINARY; tests that use
// this package run as root.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
	"github.com/berth-dev/berth/engine/image"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/reconcile"
)

// Option changes how Up brings the project up.
type Option func(*settings)

type settings struct {
	files    []string
	env      []string
	isolated bool
	root     string
	images   []string
	build    bool
	timeout  time.Duration
	name     string
}

// Files names the Compose files (default: the directory's compose.yaml).
func Files(files ...string) Option { return func(s *settings) { s.files = files } }

// Env sets variables for the files' interpolation (KEY=VALUE), over the
// test process's environment.
func Env(kv ...string) Option { return func(s *settings) { s.env = append(s.env, kv...) } }

// Isolated runs the project on a state root and daemon of the test's own.
func Isolated() Option { return func(s *settings) { s.isolated = true } }

// Root runs the project on the given state root (and its daemon).
func Root(root string) Option { return func(s *settings) { s.root = root } }

// Images loads image tarballs (docker save or OCI layout) first, for
// projects whose images cannot be built or pulled in the test.
func Images(tarballs ...string) Option {
	return func(s *settings) { s.images = append(s.images, tarballs...) }
}

// Build rebuilds the services' images even when they exist (up --build).
func Build() Option { return func(s *settings) { s.build = true } }

// Timeout bounds how long Up waits for the services to run and be healthy
// (default 60s).
func Timeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// ProjectName overrides the generated project name.
func ProjectName(name string) Option { return func(s *settings) { s.name = name } }

// Environment is a project that Up brought up.
type Environment struct {
	t       testing.TB
	Project *manifest.Project
	client  *api.Client
}

// Up brings up the project in dir, waits until its services run (and are
// healthy where they have a healthcheck), and registers its removal, with
// its volumes, at the end of the test.
func Up(t testing.TB, dir string, opts ...Option) *Environment {
	t.Helper()
	s := settings{timeout: 60 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	binary := os.Getenv("BERTH_BINARY")
	if binary == "" {
		var err error
		if binary, err = exec.LookPath("berth"); err != nil {
			t.Fatalf("testenv: berth is not on PATH and BERTH_BINARY is not set")
		}
	}
	root := s.root
	host := os.Getenv("BERTH_HOST")
	switch {
	case s.isolated:
		dir, err := os.MkdirTemp("", "berth-testenv-")
		if err != nil {
			t.Fatal(err)
		}
		root, host = filepath.Join(dir, "root"), ""
		t.Cleanup(func() { os.RemoveAll(dir) })
	case root == "":
		root = envOr("BERTH_ROOT", daemon.DefaultRoot)
	}
	ctx := context.Background()
	client, err := daemon.Connect(ctx, root, daemon.HostFor(root, host), binary)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if s.isolated {
		t.Cleanup(func() { stopDaemon(root) })
	}
	t.Cleanup(client.Close)

	if s.name == "" {
		s.name = uniqueName(t.Name())
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := manifest.Load(ctx, manifest.Options{
		Files: s.files, ProjectName: s.name, ProjectDirectory: abs, WorkDir: abs,
		Environ: append(os.Environ(), s.env...),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, tarball := range s.images {
		f, err := os.Open(tarball)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		_, err = client.Images().Load(ctx, f, image.LoadOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("testenv: load %s: %v", tarball, err)
		}
	}
	e := &Environment{t: t, Project: p, client: client}
	t.Cleanup(func() {
		_, err := daemon.Projects(client).Down(context.Background(), daemon.DownRequest{
			Name: p.Name, Project: p, Options: reconcile.DownOptions{Volumes: true, RemoveOrphans: true},
			Timeout: ptr(2 * time.Second),
		}, nil)
		if err != nil {
			t.Errorf("testenv: down %s: %v", p.Name, err)
		}
	})
	req := daemon.UpRequest{Project: p}
	if s.build {
		req.Options.Build = reconcile.BuildAlways
	}
	if _, err := daemon.Projects(client).Up(ctx, req, nil); err != nil {
		t.Fatalf("testenv: up %s: %v", p.Name, err)
	}
	if err := e.waitReady(ctx, s.timeout); err != nil {
		t.Fatalf("testenv: %v\n%s", err, e.allLogs())
	}
	return e
}

func ptr[T any](v T) *T { return &v }

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

var unsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// uniqueName is a project name from the test's name and a random suffix.
func uniqueName(test string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := strings.Trim(unsafe.ReplaceAllString(strings.ToLower(test), "-"), "-_")
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "-" + hex.EncodeToString(b)
}

func stopDaemon(root string) {
	b, err := os.ReadFile(filepath.Join(root, "daemon.lock"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	_ = proc.Signal(syscall.SIGTERM)
	for range 200 {
		if proc.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// containers are the project's containers of service ("" for all).
func (e *Environment) containers(ctx context.Context, service string) ([]container.Container, error) {
	labels := map[string]string{reconcile.LabelProject: e.Project.Name, reconcile.LabelOneOff: "False"}
	if service != "" {
		labels[reconcile.LabelService] = service
	}
	return e.client.Containers().List(ctx, container.ListOptions{All: true, Labels: labels})
}

func (e *Environment) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cs, err := e.containers(ctx, "")
		if err != nil {
			return err
		}
		ready, why := true, ""
		for _, c := range cs {
			st := c.State
			switch {
			case st.Status == container.Exited && st.ExitCode == 0:
			case st.Status != container.Running:
				ready, why = false, c.Name+" is "+string(st.Status)
			case st.Health != nil && st.Health.Status != "healthy":
				ready, why = false, c.Name+" is "+st.Health.Status
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("project %s not ready after %v: %s", e.Project.Name, timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr is the host address ("127.0.0.1:NNNN") at which port of service
// (its first replica) is published.
func (e *Environment) Addr(service string, port int) string {
	e.t.Helper()
	addrs := e.Addrs(service, port)
	if len(addrs) == 0 {
		e.t.Fatalf("testenv: service %s publishes no port %d", service, port)
	}
	return addrs[0]
}

// Addrs are the published addresses of port for every replica of service.
func (e *Environment) Addrs(service string, port int) []string {
	e.t.Helper()
	cs, err := e.containers(context.Background(), service)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		for _, p := range c.Network.Ports {
			if int(p.ContainerPort) == port && p.Protocol == "tcp" {
				host := p.HostIP
				if host == "0.0.0.0" || host == "" {
					host = "127.0.0.1"
				}
				out = append(out, fmt.Sprintf("%s:%d", host, p.HostPort))
			}
		}
	}
	return out
}

// IPs are the addresses of service's replicas on their first network; the
// host reaches them directly.
func (e *Environment) IPs(service string) []string {
	e.t.Helper()
	cs, err := e.containers(context.Background(), service)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		if len(c.Network.Order) > 0 {
			out = append(out, c.Network.Networks[c.Network.Order[0]].IPAddress)
		}
	}
	return out
}

// Logs returns what service's containers printed so far.
func (e *Environment) Logs(service string) string {
	e.t.Helper()
	cs, err := e.containers(context.Background(), service)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range cs {
		_ = e.client.Containers().Logs(context.Background(), c.ID, api.LogsOptions{Tail: "all"}, func(l api.LogEntry) error {
			b.WriteString(c.Name + " | " + l.Line)
			return nil
		})
	}
	return b.String()
}

func (e *Environment) allLogs() string { return e.Logs("") }
