package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/daemon"
	"github.com/berth-dev/berth/engine/api"
)

func newDaemonCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth daemon in the foreground",
		Long: "Run the berth daemon in the foreground, as a service manager would.\n" +
			"The CLI starts it on demand, so running it by hand is optional.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			socket, err := api.SocketPath(hostFor(opts))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			return daemon.Run(ctx, daemon.Config{Root: opts.Root, Socket: socket, Version: version, Log: log})
		},
	}
}
