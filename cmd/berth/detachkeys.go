package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// defaultDetachKeys are docker's: ctrl-p, then ctrl-q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// errDetached ends a session whose user typed the detach keys: the
// container (or the exec'd process) runs on, and the command exits 0.
var errDetached = errors.New("detached")

// parseDetachKeys reads docker's notation for a key sequence: keys
// separated by commas, each a single character or ctrl- with a letter or
// one of @ [ \ ] ^ _. "" is the default sequence.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		if len(k) == 1 {
			keys = append(keys, k[0])
			continue
		}
		c, ok := strings.CutPrefix(k, "ctrl-")
		if !ok || len(c) != 1 {
			return nil, fmt.Errorf("invalid detach keys %q: %q is neither one character nor ctrl- and one character", s, k)
		}
		switch b := c[0]; {
		case b >= 'a' && b <= 'z':
			keys = append(keys, b-'a'+1)
		case b >= 'A' && b <= 'Z':
			keys = append(keys, b-'A'+1)
		case b == '@' || b == '[' || b == '\\' || b == ']' || b == '^' || b == '_':
			keys = append(keys, b-'@')
		default:
			return nil, fmt.Errorf("invalid detach keys %q: no key ctrl-%c", s, b)
		}
	}
	return keys, nil
}

// detachReader passes its input on until the detach keys come, which it
// does not pass on: then it returns errDetached. The start of the
// sequence is held back until the next byte shows whether the rest
// follows.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int    // keys[:matched] were read and held back
	out     []byte // read, to be passed on
	buf     []byte
	err     error // from r, once out is passed on
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.buf == nil {
			d.buf = make([]byte, 4096)
		}
		n, err := d.r.Read(d.buf)
		for _, b := range d.buf[:n] {
			if b == d.keys[d.matched] {
				if d.matched++; d.matched == len(d.keys) {
					d.err = errDetached
					break
				}
				continue
			}
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.out = append(d.out, b)
		}
		if err != nil && d.err == nil {
			// What was held back was not the sequence after all.
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}
