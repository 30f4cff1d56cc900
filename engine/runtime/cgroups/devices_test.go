package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDeviceFilterIsEnforced attaches the filter to a cgroup2 directory and
// checks, with a real process in it, what it lets through.
func TestDeviceFilterIsEnforced(t *testing.T) {
	testutil.RequireRoot(t)
	mount := testutil.UnifiedMount(t)
	dir := filepath.Join(mount, fmt.Sprintf("berth-devtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	null, zero := int64(1), int64(3)
	five := int64(5)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &null, Minor: &zero, Access: "rwm"}, // /dev/null
		{Allow: true, Type: "c", Major: &null, Minor: &five, Access: "r"},   // /dev/zero, read only
	}
	if err := attachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	cg, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	script := "echo x > /dev/null && echo null-write; head -c1 /dev/zero >/dev/null && echo zero-read; " +
		"echo x > /dev/zero 2>/dev/null && echo zero-write; head -c1 /dev/urandom >/dev/null 2>&1 && echo urandom-read; true"
	cmd := exec.Command(testutil.Busybox(t), "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "null-write\nzero-read" {
		t.Fatalf("allowed: %q, want null-write and zero-read only", got)
	}
}

func TestNormaliseDevices(t *testing.T) {
	one := int64(1)
	def, list, err := normaliseDevices([]specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Major: &one, Access: "r"},
		{Allow: false, Access: "rwm"}, // resets what came before
		{Allow: true, Type: "b", Access: "m"},
	})
	if err != nil || def || len(list) != 1 || list[0].typ != devBlock || list[0].access != accMknod {
		t.Fatalf("got %v %+v %v", def, list, err)
	}
	if _, _, err := normaliseDevices([]specs.LinuxDeviceCgroup{{Allow: true, Type: "x"}}); err == nil {
		t.Fatal("a bad type was accepted")
	}
}
