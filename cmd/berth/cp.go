package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/internal/tarcopy"
)

// copyEnds splits cp's SRC and DEST: exactly one names a container side,
// "NAME:PATH".
func copyEnds(src, dst string) (name, path string, toContainer bool, local string, err error) {
	split := func(s string) (string, string, bool) {
		if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
			return "", "", false
		}
		n, p, ok := strings.Cut(s, ":")
		return n, p, ok && n != ""
	}
	sn, sp, sOK := split(src)
	dn, dp, dOK := split(dst)
	switch {
	case sOK && !dOK:
		return sn, sp, false, dst, nil
	case dOK && !sOK:
		return dn, dp, true, src, nil
	}
	return "", "", false, "", errors.New("copying between containers, or between two local paths, is not supported: one side must be NAME:PATH")
}

// copyTo sends local (a path, or "-" for a tar on stdin) to path in the container.
func copyTo(ctx context.Context, cc *api.ContainerClient, id, path, local string, stdin io.Reader) error {
	if local == "-" {
		return cc.CopyTo(ctx, id, path, stdin)
	}
	info, err := os.Lstat(local)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tarcopy.Add(tw, local, filepath.Base(filepath.Clean(local)), info)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return cc.CopyTo(ctx, id, path, pr)
}

// copyFrom brings path from the container to local (a path, or "-" for a
// tar on stdout): into local when it is a directory, else as local.
func copyFrom(ctx context.Context, cc *api.ContainerClient, id, path, local string, stdout io.Writer) error {
	r, err := cc.CopyFrom(ctx, id, path)
	if err != nil {
		return err
	}
	defer r.Close()
	if local == "-" {
		_, err := io.Copy(stdout, r)
		return err
	}
	dir, rename := local, ""
	if info, err := os.Stat(local); err != nil || !info.IsDir() {
		dir, rename = filepath.Dir(local), filepath.Base(local)
	}
	return tarcopy.Extract(tar.NewReader(r), dir, rename)
}

func newCpCommand(opts *globalOptions) *cobra.Command {
	var index int
	c := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
		Short: "Copy files/folders between a service container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, path, toContainer, local, err := copyEnds(args[0], args[1])
			if err != nil {
				return err
			}
			s, err := openSession(cmd.Context(), opts, true)
			if err != nil {
				return err
			}
			defer s.close()
			ctr, err := serviceReplica(cmd, s, service, index, false)
			if err != nil {
				return err
			}
			if toContainer {
				return copyTo(cmd.Context(), s.client.Containers(), ctr.ID, path, local, cmd.InOrStdin())
			}
			return copyFrom(cmd.Context(), s.client.Containers(), ctr.ID, path, local, cmd.OutOrStdout())
		},
	}
	c.Flags().IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	return c
}

func newContainerCpCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "cp CONTAINER:SRC_PATH DEST_PATH|-\n  berth container cp SRC_PATH|- CONTAINER:DEST_PATH",
		Short:   "Copy files/folders between a container and the local filesystem",
		Example: "  berth container cp box:/etc/hostname ./hostname\n  berth container cp ./app.conf box:/etc/",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, path, toContainer, local, err := copyEnds(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := connect(cmd.Context(), opts)
			if err != nil {
				return err
			}
			defer c.Close()
			if toContainer {
				return copyTo(cmd.Context(), c.Containers(), name, path, local, cmd.InOrStdin())
			}
			return copyFrom(cmd.Context(), c.Containers(), name, path, local, cmd.OutOrStdout())
		},
	}
}
