// Package rootid derives the short identity of a berth state root.
//
// Every name berth creates on the host (bridges, veths, nftables tables,
// cgroups) carries this identity, so two state roots on one host (two test
// runs, say) never touch each other's objects. It is derived from the
// root's absolute path rather than stored in it, so a cleanup tool or a test
// can compute it without reading the root.
package rootid

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// Len is the number of hex digits in an identity.
const Len = 6

// Of returns the identity of the state root at path: Len lowercase hex digits.
func Of(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = filepath.Clean(root)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:Len]
}

// LinkPrefix is the prefix of every network interface that the state root at
// path creates: "b" and its identity, 7 characters, leaving 8 of the 15 that
// Linux allows for the kind of link and its own id.
func LinkPrefix(root string) string { return "b" + Of(root) }

// NFTable is the name of the nftables table (family inet) that holds the
// state root's NAT and filter rules.
func NFTable(root string) string { return "berth-" + Of(root) }

// CgroupParent is the cgroup, relative to each hierarchy's mount point, under
// which the state root's containers get their cgroups.
func CgroupParent(root string) string { return "berth-" + Of(root) }
