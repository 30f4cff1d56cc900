package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes value to an existing control file. Unlike os.WriteFile
// it never creates: a missing knob is ENOENT, not a confusing EACCES.
func writeFile(path, value string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_TRUNC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// readUint reads a control file holding one number; "max" reads as 0.
func readUint(path string) (uint64, error) {
	s, err := readFile(path)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKeyed reads a file of "key value" lines (memory.stat, cpu.stat...).
func readKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// readProcs reads a cgroup.procs file.
func readProcs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// mkdirAll makes dir and the missing directories above it, down from
// mount, calling made for each directory on the way, made or found (cpuset
// needs its cpus and mems filled in before a process may join, and one
// found may be another creator's, not filled yet); made must be idempotent.
func mkdirAll(mount, dir string, made func(dir string) error) error {
	if err := unix.Mkdir(dir, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
		if made != nil {
			return made(dir)
		}
		return nil
	} else if !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	rel, err := filepath.Rel(mount, dir)
	if err != nil {
		return err
	}
	cur := mount
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		err := unix.Mkdir(cur, 0o755)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "mkdir", Path: cur, Err: err}
		}
		// Existing directories too: a concurrent creator may have made one
		// and not yet filled it (made is idempotent).
		if made != nil {
			if err := made(cur); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryMkdir runs mkdirAll again when a concurrent delete removed a parent
// between two of its steps (the state root's parent cgroup goes away with
// its last container).
func retryMkdir(mount, dir string, made func(string) error) error {
	var err error
	for range 5 {
		if err = mkdirAll(mount, dir, made); !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return err
}

// rmdir removes a cgroup directory, waiting a little while its last
// processes finish leaving (EBUSY).
func rmdir(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("rmdir %s: %w", dir, ErrNotEmpty)
			}
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// waitEmpty polls a cgroup.procs file until it lists nothing.
func waitEmpty(procs string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 200 * time.Microsecond
	for {
		pids, err := readProcs(procs)
		if errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d processes left after SIGKILL: %w", filepath.Dir(procs), len(pids), ErrNotEmpty)
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

func signalAll(pids []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// apply performs the writes of a plan. dirOf finds the directory of a v1
// controller ("" on v2); ok is false when the host lacks the controller.
func apply(ws []Write, dirOf func(ctrl string) (string, bool)) ([]string, error) {
	var warnings []string
	for i, w := range ws {
		dir, ok := dirOf(w.Controller)
		if !ok {
			if w.Optional {
				warnings = append(warnings, fmt.Sprintf("cgroup controller %s is not mounted: %s not set", w.Controller, w.File))
				continue
			}
			return warnings, fmt.Errorf("set %s: cgroup controller %s is not mounted on this host", w, w.Controller)
		}
		err := writeFirst(dir, w)
		if errors.Is(err, unix.EINVAL) && w.File == "memory.limit_in_bytes" {
			// Raising the limit above memory+swap's is refused: set
			// memory+swap first, then the limit.
			for _, later := range ws[i+1:] {
				if later.File == "memory.memsw.limit_in_bytes" {
					if writeFirst(dir, later) == nil {
						err = writeFirst(dir, w)
					}
				}
			}
		}
		if errors.Is(err, os.ErrNotExist) && w.Optional {
			warnings = append(warnings, fmt.Sprintf("%s not supported by this kernel: not set", w.File))
			continue
		}
		if err != nil {
			return warnings, fmt.Errorf("set %s: %w", w, err)
		}
	}
	return warnings, nil
}

// writeFirst writes w to its file, or to the first of its fallbacks that exists.
func writeFirst(dir string, w Write) error {
	err := writeFile(filepath.Join(dir, w.File), w.Value)
	for _, f := range w.Fallbacks {
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
		err = writeFile(filepath.Join(dir, f), w.Value)
	}
	return err
}
