package dnsresolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds raw datagrams to what a UDP listener runs on them: the
// fast path, then the chain. Whatever the bytes, nothing panics, a packet
// that miekg/dns cannot parse gets no reply at all, and every reply is a
// well-formed answer to the query's ID that fits the client's UDP size. When
// the fast path answers, the chain answers the same.
func FuzzHandler(f *testing.F) {
	n, sub := socketless(f)
	seed := func(name string, qtype uint16, edns uint16) {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, byte(99))
		f.Add(b, byte(30))
	}
	seed("web.", dns.TypeA, 0)
	seed("WEB.proj_default.", dns.TypeAAAA, 1232)
	seed("pg.corp.example.", dns.TypeA, 0)
	seed("big.", dns.TypeA, 0)
	seed("21.0.77.10.in-addr.arpa.", dns.TypePTR, 0)
	seed("example.test.", dns.TypeTXT, 4096)
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, byte(99)) // pointer loop
	f.Add([]byte{0xff, 0xff, 0x80}, byte(99))

	f.Fuzz(func(t *testing.T, pkt []byte, last byte) {
		src := host(sub, last)
		if last == 0 {
			src = netip.MustParseAddr("192.0.2.1") // outside the network
		}
		parsed := new(dns.Msg)
		parseErr := parsed.Unpack(pkt)

		fast, fastOK := n.answerFast(pkt, src, make([]byte, 0, ednsSize))
		if fastOK {
			if parseErr != nil {
				t.Fatalf("fast path answered a packet miekg/dns rejects (%v)", parseErr)
			}
			checkReply(t, parsed, fast)
		}
		replies := viaChain(n, pkt, src)
		if parseErr != nil || parsed.Response || be16(pkt[4:]) != 1 || len(parsed.Question) != 1 {
			if len(replies) != 0 {
				t.Fatalf("replied to a packet that is no one-question query (parse error %v)", parseErr)
			}
			return
		}
		if len(replies) != 1 {
			t.Fatalf("%d replies to one query", len(replies))
		}
		checkReply(t, parsed, replies[0])
		if fastOK {
			if a, b := normalised(t, fast), normalised(t, replies[0]); a != b {
				t.Fatalf("fast path and chain differ\nfast:\n%s\nchain:\n%s", a, b)
			}
		}
	})
}

// checkReply fails unless reply is a well-formed answer to query that fits
// the client's UDP size.
func checkReply(t *testing.T, query *dns.Msg, reply []byte) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if !m.Response || m.Id != query.Id {
		t.Fatalf("reply qr=%v id=%d to query id=%d", m.Response, m.Id, query.Id)
	}
	if size := clientUDPSize(query); len(reply) > size {
		t.Fatalf("reply of %d bytes to a client that takes %d", len(reply), size)
	}
}
