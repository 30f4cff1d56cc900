package container

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/engine/runtime"
)

// resolveUser turns a user spec (user, uid, user:group, uid:gid) into ids,
// reading the container's /etc/passwd and /etc/group as docker does. The
// user's supplementary groups come from /etc/group.
func resolveUser(rootfs, spec string) (specs.User, error) {
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd := readColonFile(filepath.Join(rootfs, "etc", "passwd"))
	groups := readColonFile(filepath.Join(rootfs, "etc", "group"))

	var u specs.User
	name := ""
	if uid, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(uid)
		for _, p := range passwd {
			if len(p) > 3 && p[2] == userPart {
				name = p[0]
				if gid, err := strconv.ParseUint(p[3], 10, 32); err == nil {
					u.GID = uint32(gid)
				}
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if len(p) > 3 && p[0] == userPart {
				uid, err1 := strconv.ParseUint(p[2], 10, 32)
				gid, err2 := strconv.ParseUint(p[3], 10, 32)
				if err1 != nil || err2 != nil {
					break
				}
				u.UID, u.GID, name, found = uint32(uid), uint32(gid), p[0], true
				break
			}
		}
		if !found {
			return u, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userPart))
		}
	}
	if hasGroup {
		if gid, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(gid)
		} else {
			found := false
			for _, g := range groups {
				if len(g) > 2 && g[0] == groupPart {
					if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil {
						u.GID, found = uint32(gid), true
					}
					break
				}
			}
			if !found {
				return u, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find group %s: no matching entries in group file", groupPart))
			}
		}
	}
	if name != "" {
		for _, g := range groups {
			if len(g) < 4 {
				continue
			}
			for _, member := range strings.Split(g[3], ",") {
				if member == name {
					if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil && uint32(gid) != u.GID {
						u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
					}
				}
			}
		}
	}
	return u, nil
}

// readColonFile reads /etc/passwd-style lines; a missing file is empty.
func readColonFile(path string) [][]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// lastCap is the highest capability this kernel knows (and berth names).
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(runtime.AllCapabilities()) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(runtime.AllCapabilities()) - 1
	}
	return min(n, len(runtime.AllCapabilities())-1)
}
