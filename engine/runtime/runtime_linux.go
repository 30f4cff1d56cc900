package runtime

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/rootid"
	"github.com/berth-dev/berth/internal/spreaddirs"
)

// New returns a Runtime over cfg.StateDir, creating the directory.
func New(cfg Config) (*Runtime, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("runtime: no state directory")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = dir
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	// One directory per container, made and removed with it (see
	// spreaddirs). Not being able to spread them only slows them down.
	_ = spreaddirs.Mark(dir)
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = rootid.CgroupParent(dir)
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("runtime: find own binary: %w", err)
		}
		cfg.Binary = exe
	}
	if err := checkStatic(cfg.Binary); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = discard{}
	}
	host, err := cgroups.Detect()
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return &Runtime{cfg: cfg, host: host, log: log}, nil
}

// checkStatic refuses a setup-stage binary that needs a dynamic loader:
// the stage execs inside containers, where there is none, and would fail
// with a bare "no such file or directory" at every exec and healthcheck.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return nil // not for this check to judge; exec will say
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("runtime: %s is dynamically linked (built with cgo); berth runs it inside containers, which have no dynamic loader: build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// Close releases the read-only view of the binary. Containers are not affected.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exe != nil {
		err := r.exe.Close()
		r.exe = nil
		return err
	}
	return nil
}

// binary returns the read-only view of the setup stage's binary, made once.
func (r *Runtime) binary() (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exe == nil {
		f, copied, err := sealBinary(r.cfg.Binary, scratchDir(r.cfg.Binary, r.cfg.StateDir))
		if err != nil {
			return nil, err
		}
		if copied {
			r.log.Warn("runtime: no read-only overlay of the binary; every container start copies it into a sealed memfd", "binary", r.cfg.Binary)
		}
		r.exe = f
	}
	return r.exe, nil
}

// scratchDir is the empty directory that the binary's read-only overlay
// needs as a second layer. overlayfs refuses layers nested in one another,
// so it must be neither inside the binary's directory nor above it.
func scratchDir(binary, stateDir string) string {
	real, err := filepath.EvalSymlinks(binary)
	if err != nil {
		real = binary
	}
	bin := filepath.Dir(real)
	nested := func(a, b string) bool { return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/") }
	for _, c := range []string{filepath.Join(stateDir, ".empty"), "/run/berth/.empty", "/var/lib/berth/.empty", "/dev/shm/.berth-empty"} {
		if !nested(c, bin) {
			return c
		}
	}
	return filepath.Join(stateDir, ".empty")
}

// childFailpoints is what the setup stage arms.
func (r *Runtime) childFailpoints() string {
	fp := os.Getenv(failpoint.Env)
	if r.failpoints != "" {
		if fp != "" {
			fp += ";"
		}
		fp += r.failpoints
	}
	return fp
}
