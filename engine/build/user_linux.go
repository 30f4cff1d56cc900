package build

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// colonFile is /etc/passwd or /etc/group, read from an image's root.
type colonFile [][]string

func readColonFile(root *fsRoot, p string) (colonFile, error) {
	data, err := root.readFile(p, 4<<20)
	if err != nil {
		return nil, err
	}
	var out colonFile
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, nil
}

// find returns the line whose name (field 0) or number (field 2) is key.
func (f colonFile) find(key string, numeric bool) []string {
	for _, l := range f {
		if len(l) < 3 {
			continue
		}
		if (!numeric && l[0] == key) || (numeric && l[2] == key) {
			return l
		}
	}
	return nil
}

// lookupUser resolves a USER spec ("name", "uid", "name:group", "uid:gid")
// in the image's /etc/passwd and /etc/group, as docker resolves it for
// RUN: the user's primary group unless one is given, and the groups that
// list the user by name as supplementary ones.
func lookupUser(root *fsRoot, spec string) (specs.User, error) {
	var u specs.User
	if spec == "" {
		return u, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd, err := readColonFile(root, "/etc/passwd")
	if err != nil {
		return u, err
	}
	name := ""
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		if l := passwd.find(userPart, true); l != nil {
			name = l[0]
			if len(l) > 3 {
				if g, err := strconv.ParseUint(l[3], 10, 32); err == nil {
					u.GID = uint32(g)
				}
			}
		}
	} else {
		l := passwd.find(userPart, false)
		if len(l) < 4 {
			return u, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userPart))
		}
		uid, err1 := strconv.ParseUint(l[2], 10, 32)
		gid, err2 := strconv.ParseUint(l[3], 10, 32)
		if err1 != nil || err2 != nil {
			return u, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("user %s: bad passwd line", userPart))
		}
		u.UID, u.GID, name = uint32(uid), uint32(gid), userPart
	}
	group, err := readColonFile(root, "/etc/group")
	if err != nil {
		return u, err
	}
	if hasGroup {
		gid, err := groupID(group, groupPart)
		if err != nil {
			return u, err
		}
		u.GID = gid
	}
	if name != "" {
		for _, l := range group {
			if len(l) < 4 {
				continue
			}
			for _, m := range strings.Split(l[3], ",") {
				if m == name {
					if g, err := strconv.ParseUint(l[2], 10, 32); err == nil && uint32(g) != u.GID {
						u.AdditionalGids = append(u.AdditionalGids, uint32(g))
					}
				}
			}
		}
	}
	return u, nil
}

func groupID(group colonFile, spec string) (uint32, error) {
	if n, err := strconv.ParseUint(spec, 10, 32); err == nil {
		return uint32(n), nil
	}
	l := group.find(spec, false)
	if l == nil {
		return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to find group %s: no matching entries in group file", spec))
	}
	n, err := strconv.ParseUint(l[2], 10, 32)
	if err != nil {
		return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("group %s: bad group line", spec))
	}
	return uint32(n), nil
}

// chownOwner resolves a --chown spec against the image being built: a
// number alone is uid and gid, a name takes its primary group.
func chownOwner(root *fsRoot, spec string) (owner, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	var own owner
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		own.uid, own.gid = int(n), int(n)
	} else {
		u, err := lookupUser(root, userPart)
		if err != nil {
			return own, err
		}
		own.uid, own.gid = int(u.UID), int(u.GID)
	}
	if hasGroup {
		group, err := readColonFile(root, "/etc/group")
		if err != nil {
			return own, err
		}
		gid, err := groupID(group, groupPart)
		if err != nil {
			return own, err
		}
		own.gid = int(gid)
	}
	return own, nil
}

// closeFD closes a descriptor whose close error means nothing.
func closeFD(fd int) { unix.Close(fd) }
