package runtime

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// mountOptions is a spec mount's options split the way mount(2) takes them.
type mountOptions struct {
	flags       uintptr   // MS_* flags for the mount itself
	propagation []uintptr // MS_SHARED, MS_SLAVE... (with MS_REC), applied after
	data        []string  // filesystem options: mode=755, size=64m
	bind        bool
	recursive   bool // rbind
}

// parseMountOptions reads a spec mount's options.
func parseMountOptions(opts []string) (mountOptions, error) {
	var m mountOptions
	for _, o := range opts {
		set, clear, ok := mountFlag(o)
		if ok {
			m.flags = m.flags&^clear | set
			continue
		}
		switch o {
		case "bind":
			m.bind = true
		case "rbind":
			m.bind, m.recursive = true, true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
			m.propagation = append(m.propagation, propagationFlag(o))
		case "tmpcopyup":
			// A runc extension (copy the image's files into a tmpfs); berth's
			// volumes do their own copy-up, so the mount stays empty.
		case "idmap", "ridmap":
			return m, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("mount option %q (id-mapped mounts) is not supported", o))
		default:
			if strings.HasPrefix(o, "X-") || strings.HasPrefix(o, "x-") {
				continue // userspace-only hints, as mount(8) ignores them
			}
			m.data = append(m.data, o)
		}
	}
	return m, nil
}

// mountFlag returns the MS_* flags an option sets and clears.
func mountFlag(o string) (set, clear uintptr, ok bool) {
	switch o {
	case "ro":
		return unix.MS_RDONLY, 0, true
	case "rw":
		return 0, unix.MS_RDONLY, true
	case "nosuid":
		return unix.MS_NOSUID, 0, true
	case "suid":
		return 0, unix.MS_NOSUID, true
	case "nodev":
		return unix.MS_NODEV, 0, true
	case "dev":
		return 0, unix.MS_NODEV, true
	case "noexec":
		return unix.MS_NOEXEC, 0, true
	case "exec":
		return 0, unix.MS_NOEXEC, true
	case "sync":
		return unix.MS_SYNCHRONOUS, 0, true
	case "async":
		return 0, unix.MS_SYNCHRONOUS, true
	case "dirsync":
		return unix.MS_DIRSYNC, 0, true
	case "mand":
		return unix.MS_MANDLOCK, 0, true
	case "nomand":
		return 0, unix.MS_MANDLOCK, true
	case "noatime":
		return unix.MS_NOATIME, 0, true
	case "atime":
		return 0, unix.MS_NOATIME, true
	case "nodiratime":
		return unix.MS_NODIRATIME, 0, true
	case "diratime":
		return 0, unix.MS_NODIRATIME, true
	case "relatime":
		return unix.MS_RELATIME, 0, true
	case "norelatime":
		return 0, unix.MS_RELATIME, true
	case "strictatime":
		return unix.MS_STRICTATIME, 0, true
	case "nostrictatime":
		return 0, unix.MS_STRICTATIME, true
	case "lazytime":
		return unix.MS_LAZYTIME, 0, true
	case "nosymfollow":
		return unix.MS_NOSYMFOLLOW, 0, true
	case "remount", "defaults":
		return 0, 0, true
	}
	return 0, 0, false
}

func propagationFlag(o string) uintptr {
	var f uintptr
	if strings.HasPrefix(o, "r") {
		f = unix.MS_REC
		o = o[1:]
	}
	switch o {
	case "private":
		f |= unix.MS_PRIVATE
	case "shared":
		f |= unix.MS_SHARED
	case "slave":
		f |= unix.MS_SLAVE
	case "unbindable":
		f |= unix.MS_UNBINDABLE
	}
	return f
}
