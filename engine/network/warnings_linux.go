package network

import (
	"bytes"
	"fmt"
	"os"
)

// Warnings lists conditions of the host that may keep berth's networks from
// working and that berth cannot fix itself, one sentence each with what to
// do, for the daemon's log and `berth network ls`'s notes.
func (m *Manager) Warnings() []string {
	var out []string
	// iptables-legacy keeps its rules in x_tables, outside nftables: berth
	// can neither see the policy of its FORWARD chain nor insert accept
	// rules in it. Docker with iptables-legacy sets that policy to DROP.
	if b, err := os.ReadFile("/proc/net/ip_tables_names"); err == nil && hasLine(b, "filter") {
		out = append(out, fmt.Sprintf("the iptables-legacy filter table is loaded: if its FORWARD policy is DROP (Docker with iptables-legacy sets it), "+
			"berth's containers cannot reach each other or the outside. Use iptables-nft (berth then inserts its own accept rules), "+
			"or run: iptables -I FORWARD -i %s+ -j ACCEPT; iptables -I FORWARD -o %s+ -j ACCEPT", m.prefix, m.prefix))
	}
	return out
}

func hasLine(b []byte, line string) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		if string(bytes.TrimSpace(l)) == line {
			return true
		}
	}
	return false
}
