package container

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TrimMemory gives back what a long-lived berth process no longer needs
// once it started: the heap that package initialisation left behind, and
// the pages of berth's own binary (code and read-only data) that start-up
// touched (every package's init, and the kernel's fault-around, map far
// more of the 30 MB binary than an idle daemon or monitor runs). Clean
// file pages come back from the page cache on the next touch, so the
// process keeps only what it uses. berth's idle memory is a headline
// figure (DESIGN.md); this is cheap (one GC, one madvise per mapping).
func TrimMemory() {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[5] != exe {
			continue
		}
		// Only clean, read-only mappings: text (r-xp) and rodata (r--p).
		// The writable data segment holds the process's state.
		if perms := fields[1]; perms != "r-xp" && perms != "r--p" {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
