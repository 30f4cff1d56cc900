// Command probe is a static helper that berth's runtime tests copy into
// busybox containers: it makes one syscall that busybox has no applet for
// and prints "ok" or the error, so a test can see what the kernel (and the
// container's seccomp filter) answered.
//
//	probe keyctl          keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING)
//	probe unshare         unshare(CLONE_NEWUTS)
//	probe write PATH      open(PATH, O_WRONLY)
//	probe hold PATH       open(PATH, O_PATH), then on each stdin line open
//	                      /proc/self/fd/N for writing (the CVE-2019-5736 move)
package main

import (
	"bufio"
	"fmt"
	"os"
	"syscall"
)

const (
	oPath = 0x200000 // O_PATH, which package syscall does not name

	keyctlGetKeyringID    = 0
	keySpecSessionKeyring = -3
)

func report(err error) {
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ok")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe keyctl|unshare|write PATH|hold PATH")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "keyctl":
		ring := keySpecSessionKeyring
		_, _, e := syscall.Syscall(syscall.SYS_KEYCTL, keyctlGetKeyringID, uintptr(ring), 0)
		if e != 0 {
			report(e)
			return
		}
		report(nil)
	case "unshare":
		report(syscall.Unshare(syscall.CLONE_NEWUTS))
	case "write":
		f, err := os.OpenFile(os.Args[2], os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		report(err)
	case "hold":
		fd, err := syscall.Open(os.Args[2], oPath, 0)
		if err != nil {
			report(err)
			return
		}
		fmt.Println("held")
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			report(err)
		}
	default:
		fmt.Fprintln(os.Stderr, "probe: unknown test", os.Args[1])
		os.Exit(2)
	}
}
