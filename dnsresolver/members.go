package dnsresolver

import (
	"slices"
	"strings"
)

// A container attached to several networks resolves the names of all of
// them, as with Docker, whose resolver answers from every network of the
// asking container: a proxy on "front" and "back" finds services on both.
// berth has one listener per network, and the container asks only the one
// in its resolv.conf, so that listener looks further, in the other networks'
// views, when its own does not have the name. It looks only where the asking
// container itself is attached: a container on one network never sees
// another's names.
//
// The server keeps, per container name, the networks it has an endpoint on;
// the index is rebuilt on every record change and read with one atomic load.

// setMembers records the containers that have an endpoint on n (nil when n
// goes away) and republishes the index. Called with n.mu held; it takes
// memberMu after it, never before.
func (s *Server) setMembers(n *network, containers []string) {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	if containers == nil {
		delete(s.memberSets, n)
	} else {
		s.memberSets[n] = containers
	}
	index := make(map[string][]*network)
	for net, list := range s.memberSets {
		for _, c := range list {
			index[c] = append(index[c], net)
		}
	}
	for c, nets := range index {
		if len(nets) < 2 {
			delete(index, c) // on one network: nothing to look further for
			continue
		}
		slices.SortFunc(nets, func(a, b *network) int { return strings.Compare(a.spec.Name, b.spec.Name) })
	}
	s.members.Store(&index)
}

// resolve is view.lookup widened to the asking container's other networks.
func (n *network) resolve(v *view, a *asker, name []byte) (found *addrs, owned bool) {
	found, owned = v.lookup(a, name)
	if found != nil || owned || a == nil {
		return found, owned
	}
	for _, other := range (*n.srv.members.Load())[a.container] {
		if other == n {
			continue
		}
		ov := other.view.Load()
		oa := ov.byName[a.container]
		if oa == nil {
			continue
		}
		if found, owned = ov.lookup(oa, name); found != nil || owned {
			return found, owned
		}
	}
	return nil, false
}

// resolvePTR finds the name of an address on the network, or on one of the
// asking container's other networks.
func (n *network) resolvePTR(v *view, a *asker, name string) (string, bool) {
	if target, ok := v.ptr[name]; ok || a == nil {
		return target, ok
	}
	for _, other := range (*n.srv.members.Load())[a.container] {
		if other == n {
			continue
		}
		ov := other.view.Load()
		if ov.byName[a.container] == nil {
			continue
		}
		if target, ok := ov.ptr[name]; ok {
			return target, true
		}
	}
	return "", false
}
