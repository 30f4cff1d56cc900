package network

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// whole runs a netlink dump again while the kernel says it was
// interrupted: links, addresses or routes that change meanwhile (other
// containers' veths coming and going) make it return what it had with
// netlink.ErrDumpInterrupted, which may miss some.
func whole[T any](dump func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		out, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 9 {
			return out, err
		}
	}
}
