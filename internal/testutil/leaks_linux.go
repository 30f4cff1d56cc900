package testutil

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/mountinfo"
	"github.com/berth-dev/berth/internal/rootid"
)

func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func leakedMounts(root string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{errf("read mountinfo: %v", err)}
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if under(mp, root) || under(mp, filepath.Dir(root)) {
			out = append(out, errf("mount %s", mp))
		}
	}
	return out
}

func leakedLinks(root string) []string {
	// A dump races with links that other tests make and remove at the same
	// time (the kernel flags it interrupted): ask again.
	var links []netlink.Link
	var err error
	for range 20 {
		if links, err = netlink.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return []string{errf("list links: %v", err)}
	}
	prefix := rootid.LinkPrefix(root)
	var out []string
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, prefix) {
			out = append(out, errf("link %s", name))
		}
	}
	return out
}

func leakedNFTables(root string) []string {
	conn, err := nftables.New()
	if err != nil {
		return []string{errf("nftables: %v", err)}
	}
	tables, err := conn.ListTables()
	if err != nil {
		return []string{errf("list nft tables: %v", err)}
	}
	id := rootid.Of(root)
	var out []string
	for _, tb := range tables {
		if strings.Contains(tb.Name, id) {
			out = append(out, errf("nft table %s", tb.Name))
		}
	}
	return out
}

func leakedCgroups(root string) []string {
	name := rootid.CgroupParent(root)
	var out []string
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		p := filepath.Join(h, name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, errf("cgroup %s", p))
		}
	}
	return out
}

func leakedProcesses(root string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []string{errf("read /proc: %v", err)}
	}
	self := os.Getpid()
	cgroupName := rootid.CgroupParent(root)
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		if state := procState(dir); state == "Z" || state == "X" || state == "" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		rootLink, _ := os.Readlink(filepath.Join(dir, "root"))
		cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
		cgroups, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
		if strings.Contains(args, root) || under(rootLink, root) || under(cwd, root) ||
			strings.Contains(string(cgroups), "/"+cgroupName+"/") {
			out = append(out, errf("process %d (%s)", pid, args))
		}
	}
	return out
}

func procState(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}
