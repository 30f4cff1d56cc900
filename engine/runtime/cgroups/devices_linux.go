package cgroups

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// bpfProgLoadAttr is the head of union bpf_attr for BPF_PROG_LOAD.
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// bpfProgAttachAttr is union bpf_attr for BPF_PROG_ATTACH.
type bpfProgAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// attachDeviceFilter compiles rules and attaches the program to the cgroup
// v2 directory dir. The cgroup keeps the program; it goes with the cgroup.
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	insns, err := DeviceFilter(rules)
	if err != nil {
		return err
	}
	prog, err := loadDeviceFilter(insns)
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(cg)
	attr := bpfProgAttachAttr{
		targetFd: uint32(cg), attachBpfFd: uint32(prog),
		attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr)); e != 0 {
		return fmt.Errorf("attach the device filter to %s: %w", dir, e)
	}
	return nil
}

func loadDeviceFilter(insns []byte) (int, error) {
	license := []byte("Apache-2.0\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(insns) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&insns[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "berth_devices")
	fd, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e == 0 {
		goruntime.KeepAlive(insns)
		goruntime.KeepAlive(license)
		return int(fd), nil
	}
	// Load again with the verifier's log, to say why.
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize = 1, uint32(len(log))
	attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	_, _, _ = unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	goruntime.KeepAlive(insns)
	goruntime.KeepAlive(license)
	goruntime.KeepAlive(log)
	msg := strings.TrimRight(string(log), "\x00\n")
	return -1, fmt.Errorf("load the device filter: %w: %s", e, msg)
}
