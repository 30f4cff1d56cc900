package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// makeNetns creates a network namespace with lo up and bind-mounts it on
// path, which must not exist.
func makeNetns(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// unshare moves only this thread into the new namespace. The
		// thread is never unlocked: when the goroutine ends the Go runtime
		// ends the thread with it, so no goroutine can ever run on a thread
		// left in the container's namespace (no need to setns back and to
		// trust that it worked).
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
			return
		}
		// The package handle opens its netlink socket per call, in the
		// calling thread's namespace: this one.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			errc <- fmt.Errorf("set lo up: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = removeNetns(path)
		return err
	}
	return nil
}

// removeNetns unmounts the namespace bound on path and removes the file. A
// container still running in it keeps the namespace alive, but no longer
// reachable by path.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isNetns reports whether path is a bind mount of a network namespace
// (after a reboot the file is there, the mount is not).
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// inNetns runs fn with a netlink handle in the namespace bound at path.
func inNetns(path string, fn func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	return fn(h)
}

// makeVeth creates the veth pair of ep: the host end as a port of bridge,
// the other end created straight inside the sandbox's namespace under its
// final name (no temporary name to rename, nothing to move), with its MAC
// and MTU, then given its address and brought up.
func makeVeth(nsPath, bridge string, mtu int, ep *Endpoint) error {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("mac address %q: %w", ep.MAC, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	la := netlink.NewLinkAttrs()
	la.Name = ep.HostInterface
	la.MTU = mtu
	la.Flags = net.FlagUp
	veth := &netlink.Veth{LinkAttrs: la, PeerName: ep.Interface, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create veth %s/%s: an interface of that name already exists (in the sandbox or on the host)", ep.HostInterface, ep.Interface)
		}
		return fmt.Errorf("create veth %s/%s: %w", ep.HostInterface, ep.Interface, err)
	}
	if err := plugPort(veth, br); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	peer, err := h.LinkByName(ep.Interface)
	if err != nil {
		return fmt.Errorf("find %s in the sandbox: %w", ep.Interface, err)
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ep.Address)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ep.Address, ep.Interface, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set %s up: %w", ep.Interface, err)
	}
	return nil
}

// plugPort makes the host end of a veth a port of the bridge, in hairpin
// mode: with br_netfilter, a container that reaches its own published port
// through the host's address gets the DNATed packet bridged straight back
// out of the port it came in on, which a bridge refuses without hairpin.
func plugPort(veth netlink.Link, br netlink.Link) error {
	name := veth.Attrs().Name
	if err := netlink.LinkSetMasterByIndex(veth, br.Attrs().Index); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, br.Attrs().Name, err)
	}
	if err := netlink.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", name, err)
	}
	return nil
}

// setDefaultRoute points the sandbox's default route at ep's gateway, or
// removes it when ep is nil.
func setDefaultRoute(nsPath string, ep *Endpoint) error {
	return inNetns(nsPath, func(h *netlink.Handle) error {
		if ep == nil {
			routes, err := whole(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
			if err != nil {
				return err
			}
			for _, r := range routes {
				if r.Dst == nil || r.Dst.IP.IsUnspecified() {
					if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
						return fmt.Errorf("remove default route: %w", err)
					}
				}
			}
			return nil
		}
		link, err := h.LinkByName(ep.Interface)
		if err != nil {
			return fmt.Errorf("find %s in the sandbox: %w", ep.Interface, err)
		}
		gw := ep.Gateway.As4()
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw[:]), Dst: nil}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s on %s: %w", ep.Gateway, ep.Interface, err)
		}
		return nil
	})
}

// repairVeth re-plugs an existing host end into its bridge (after the bridge
// was made again).
func repairVeth(name, bridge string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return err
	}
	if link.Attrs().MasterIndex != br.Attrs().Index {
		if err := plugPort(link, br); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(link)
}
