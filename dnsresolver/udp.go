package dnsresolver

import (
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// maxQuery is the largest UDP datagram taken as a query. Real queries are a
// few dozen bytes; anything larger is dropped unread.
const maxQuery = 4096

// serveUDP is the reader of one socket of the listener's SO_REUSEPORT group:
// read, answer on the fast path when it can, else hand the query to the chain
// in its own goroutine (forwarding waits on the network) and read on.
func (n *network) serveUDP(conn *net.UDPConn) {
	defer n.wg.Done()
	buf := make([]byte, maxQuery+1)
	out := make([]byte, 0, ednsSize)
	for {
		size, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if size > maxQuery {
			continue
		}
		pkt := buf[:size]
		if reply, ok := n.answerFast(pkt, from.Addr().Unmap(), out[:0]); ok {
			_, _ = conn.WriteToUDPAddrPort(reply, from)
			continue
		}
		select {
		case n.slots <- struct{}{}:
		default:
			continue // overloaded: drop, the client will retry
		}
		n.wg.Add(1)
		go func(pkt []byte) {
			defer n.wg.Done()
			defer func() { <-n.slots }()
			n.servePacket(pkt, &udpReply{conn: conn, peer: from})
		}(slices.Clone(pkt))
	}
}

// servePacket runs the chain for one datagram. A packet that does not parse
// as a DNS message, or is not one question (whatever its header claims;
// miekg/dns tolerates counts larger than the records present), is dropped
// without a word: any reply to garbage can serve to reflect traffic, and no
// real client sends such a query.
func (n *network) servePacket(pkt []byte, w dns.ResponseWriter) {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || be16(pkt[4:]) != 1 || len(m.Question) != 1 {
		return
	}
	n.handler.ServeDNS(w, m)
}

// udpReply is the dns.ResponseWriter of one datagram answered off the fast path.
type udpReply struct {
	conn *net.UDPConn
	peer netip.AddrPort
}

func (u *udpReply) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = u.Write(b)
	return err
}

func (u *udpReply) Write(b []byte) (int, error) { return u.conn.WriteToUDPAddrPort(b, u.peer) }
func (u *udpReply) LocalAddr() net.Addr         { return u.conn.LocalAddr() }
func (u *udpReply) RemoteAddr() net.Addr        { return net.UDPAddrFromAddrPort(u.peer) }
func (u *udpReply) Close() error                { return nil }
func (u *udpReply) TsigStatus() error           { return nil }
func (u *udpReply) TsigTimersOnly(bool)         {}
func (u *udpReply) Hijack()                     {}
