package main

import (
	"context"
	"os"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/api"
)

// hostFor is the daemon address for opts (see daemon.HostFor).
func hostFor(opts *globalOptions) string { return daemon.HostFor(opts.Root, opts.Host) }

// connect returns a client for the daemon of opts, starting the daemon
// (this same binary) when its socket does not answer.
func connect(ctx context.Context, opts *globalOptions) (*api.Client, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return daemon.Connect(ctx, opts.Root, hostFor(opts), self)
}
