package runtime

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine/runtime/cgroups"
	"github.com/berth-dev/berth/internal/failpoint"
	"github.com/berth-dev/berth/internal/rootid"
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	host, err := cgroups.Detect()
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return &Runtime{cfg: cfg, host: host, log: log}, nil
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
		f, err := sealBinary(r.cfg.Binary, filepath.Join(r.cfg.StateDir, ".empty"))
		if err != nil {
			return nil, err
		}
		r.exe = f
	}
	return r.exe, nil
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
