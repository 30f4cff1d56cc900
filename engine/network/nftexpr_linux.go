package network

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The helpers below build the nftables expressions of berth's rules. Each
// returns the expressions of one match ("iifname X", "ip saddr P"...), to be
// concatenated into a rule and closed by a verdict. Every match loads into
// register 1 and compares; a rule's matches are ANDed.

func ifname(name string) []byte { return append([]byte(name), 0) }

func iifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)},
	}
}

func oifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)},
	}
}

func oifnameNot(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(name)},
	}
}

// oifnameNotPrefix matches packets whose output interface's name does not
// start with prefix (nft's oifname != "prefix*": a compare of the first
// bytes only).
func oifnameNotPrefix(prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(prefix)},
	}
}

// ipv4 matches IPv4 packets: the table is of family inet, and the address
// matches below read IPv4 header offsets.
func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ipPrefix matches the source (offset 12) or destination (offset 16)
// address of an IPv4 header against p.
func ipPrefix(offset uint32, p netip.Prefix) []expr.Any {
	out := ipv4()
	out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4})
	if p.Bits() < 32 {
		m := make([]byte, 4)
		binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)})
	}
	a := p.Masked().Addr().As4()
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
}

func saddr(p netip.Prefix) []expr.Any { return ipPrefix(12, p) }
func daddr(p netip.Prefix) []expr.Any { return ipPrefix(16, p) }

func daddrIs(a netip.Addr) []expr.Any { return daddr(netip.PrefixFrom(a, 32)) }

// l4proto matches the transport protocol, "tcp" or "udp".
func l4proto(proto string) []expr.Any {
	n := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		n = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{n}},
	}
}

// dport matches the destination port of a TCP or UDP header (after l4proto).
func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// fibLocal matches packets whose source (or destination) is an address of
// this host: `fib saddr type local`, `fib daddr type local`.
func fibLocal(source bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagSADDR: source, FlagDADDR: !source},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ctBits matches a conntrack key (state or status) with any of bits set.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ctEstablished matches `ct state established,related`.
func ctEstablished() []expr.Any {
	return ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
}

// ctDNAT matches `ct status dnat`: connections a published port redirected.
func ctDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, 0x20 /* IPS_DST_NAT */) }

// dnatTo rewrites the destination to addr:port.
func dnatTo(addr netip.Addr, port uint16) []expr.Any {
	a := addr.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func masquerade() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

func counter() []expr.Any { return []expr.Any{&expr.Counter{}} }

// rule concatenates matches and a verdict.
func rule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
