// Package flock takes the exclusive file locks that keep two processes
// from serving one piece of state.
package flock

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrHeld is returned when another open file still holds the lock.
var ErrHeld = errors.New("the lock is held")

// ForkWait is how long to wait for a lock whose holder closed it or
// exited: long enough for a child forked by it to exec on a loaded host,
// short enough that a process that really holds the lock is told soon.
const ForkWait = 2 * time.Second

// Exclusive takes f's exclusive flock, waiting up to wait while it is
// held. A lock can outlive its holder's close by a moment: a child the
// holder forked just then (to exec another program) shares the
// descriptor until its exec or exit closes it. On a loaded host that
// moment can last milliseconds.
func Exclusive(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrHeld
		}
		time.Sleep(10 * time.Millisecond)
	}
}
