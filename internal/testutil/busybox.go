package testutil

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Busybox returns the path of the static busybox binary (Debian's
// busybox-static), ending the test if there is none.
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			return p
		}
	}
	missing(t, "a static busybox (Debian package busybox-static)")
	return ""
}

var (
	appletsOnce sync.Once
	applets     []string
)

// isStatic reports whether the ELF file at path has no program interpreter,
// that is, runs without a dynamic loader inside a bare root filesystem.
func isStatic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	return bytes.HasPrefix(head, []byte("\x7fELF")) && !bytes.Contains(head, []byte("/lib64/ld-linux")) &&
		!bytes.Contains(head, []byte("/lib/ld-linux"))
}

// BusyboxRootfs fills dir with a minimal root filesystem: busybox-static as
// /bin/busybox with a symlink per applet in /bin, /etc/passwd and /etc/group
// with root and nobody, and the empty directories a container expects.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	bb := Busybox(t)
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	appletsOnce.Do(func() {
		out, err := exec.Command(bb, "--list").Output()
		if err == nil {
			applets = strings.Fields(string(out))
		}
	})
	if len(applets) == 0 {
		t.Fatalf("%s --list printed no applets", bb)
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
