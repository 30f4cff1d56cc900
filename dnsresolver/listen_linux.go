package dnsresolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// listen binds the network's UDP sockets and TCP listener and starts serving.
//
// UDP gets one socket per reader, joined in an SO_REUSEPORT group: the kernel
// spreads queries over them by source, so each CPU runs its own read-answer
// loop with no shared socket lock. All of them set IP_FREEBIND, so the
// listener can start before the bridge has its address (daemon start, or a
// network created in parallel with its DNS); queries arrive once it has.
func (n *network) listen(sockets int) error {
	addr := n.addr.String()
	// TCP first, and without SO_REUSEPORT: if another process (another berth
	// daemon, a host DNS server) has the address, this bind fails, where UDP
	// sockets with SO_REUSEPORT might silently join its group.
	tcpConfig := net.ListenConfig{Control: socketOptions(false)}
	ln, err := tcpConfig.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	udpConfig := net.ListenConfig{Control: socketOptions(true)}
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for range sockets {
		pc, err := udpConfig.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			closeAll()
			_ = ln.Close()
			return err
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	tcp := &dns.Server{
		Listener:      ln,
		Handler:       n.handler,
		MsgAcceptFunc: acceptQueries,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
		IdleTimeout:   func() time.Duration { return 10 * time.Second },
		MaxTCPQueries: 256,
	}
	started := make(chan struct{})
	tcp.NotifyStartedFunc = func() { close(started) }
	served := make(chan error, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		served <- tcp.ActivateAndServe()
	}()
	select {
	case <-started:
	case err := <-served:
		closeAll()
		_ = ln.Close()
		return fmt.Errorf("serve tcp: %w", err)
	}
	n.wg.Add(len(conns))
	for _, c := range conns {
		go n.serveUDP(c)
	}
	n.stop = func() {
		// Shutdown closes the TCP listener and waits for its connections;
		// closing the UDP sockets ends their readers.
		_ = tcp.Shutdown()
		closeAll()
	}
	return nil
}

// acceptQueries lets every message but answers into the chain, which replies
// to what it will not serve with a proper rcode (miekg's default would
// reject some with FORMERR before berth sees them).
func acceptQueries(h dns.Header) dns.MsgAcceptAction {
	if h.Bits&(1<<15) != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// socketOptions sets what every listener socket needs before bind.
func socketOptions(reusePort bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			level, opt := unix.SOL_IP, unix.IP_FREEBIND
			if network == "udp6" || network == "tcp6" {
				level, opt = unix.SOL_IPV6, unix.IPV6_FREEBIND
			}
			if err := unix.SetsockoptInt(int(fd), level, opt, 1); err != nil {
				sockErr = fmt.Errorf("set freebind: %w", err)
				return
			}
			if reusePort {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
					sockErr = fmt.Errorf("set SO_REUSEPORT: %w", err)
				}
			}
		})
		return errors.Join(err, sockErr)
	}
}
