package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/engine/image"
)

type loginOptions struct {
	username      string
	password      string
	passwordStdin bool
}

// newLoginCommand is `berth login`: the daemon checks the credentials
// against the registry (through its token server when it has one), then
// the CLI stores them in the user's docker config as docker does
// (~/.docker/config.json, or $DOCKER_CONFIG; a credential helper when the
// config names one).
func newLoginCommand(opts *globalOptions) *cobra.Command {
	o := &loginOptions{}
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Long:  "Log in to a registry (Docker Hub when no server is given).",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return runLogin(cmd, opts, o, server)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.username, "username", "u", "", "Username")
	f.StringVar(&o.password, "password", "", "Password or personal access token")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

func runLogin(cmd *cobra.Command, opts *globalOptions, o *loginOptions, server string) error {
	stderr := cmd.ErrOrStderr()
	out := cmd.OutOrStdout()
	host, key := image.ServerHost(server)
	in := cmd.InOrStdin()
	if o.password != "" {
		fmt.Fprintln(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if o.passwordStdin {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
	}
	if o.passwordStdin {
		if o.username == "" {
			return errors.New("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		o.password = strings.TrimRight(string(b), "\r\n")
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if o.username == "" || o.password == "" {
		if err := promptCredentials(in, out, cf.GetCredentialsStore(key), key, o); err != nil {
			return err
		}
	}
	c, err := connect(cmd.Context(), opts)
	if err != nil {
		return err
	}
	auth := authn.AuthConfig{Username: o.username, Password: o.password}
	if err := c.Images().CheckLogin(cmd.Context(), host, auth); err != nil {
		return err
	}
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: o.username, Password: o.password, ServerAddress: key}); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	if cf.CredentialsStore == "" && len(cf.CredentialHelpers) == 0 {
		fmt.Fprintf(stderr, "WARNING! Your credentials are stored unencrypted in '%s'.\n", cf.GetFilename())
	}
	fmt.Fprintln(out, "Login Succeeded")
	return nil
}

// promptCredentials asks for what the flags did not give, on a terminal
// only, offering the stored username as the default.
func promptCredentials(in io.Reader, out io.Writer, store interface {
	Get(string) (types.AuthConfig, error)
}, key string, o *loginOptions) error {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("cannot perform an interactive login from a non-TTY device; use --username and --password-stdin")
	}
	r := bufio.NewReader(f)
	if o.username == "" {
		stored, _ := store.Get(key)
		if stored.Username != "" {
			fmt.Fprintf(out, "Username (%s): ", stored.Username)
		} else {
			fmt.Fprint(out, "Username: ")
		}
		line, _ := r.ReadString('\n')
		o.username = strings.TrimSpace(line)
		if o.username == "" {
			o.username = stored.Username
		}
		if o.username == "" {
			return errors.New("username is required")
		}
	}
	if o.password == "" {
		fmt.Fprint(out, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return err
		}
		o.password = string(b)
		if o.password == "" {
			return errors.New("password is required")
		}
	}
	return nil
}

// newLogoutCommand is `berth logout`: it removes the stored credentials of
// a registry from the user's docker config.
func newLogoutCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			_, key := image.ServerHost(server)
			cf, err := config.Load(config.Dir())
			if err != nil {
				return fmt.Errorf("docker config: %w", err)
			}
			out := cmd.OutOrStdout()
			if _, ok := cf.GetAuthConfigs()[key]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[key] == "" {
				fmt.Fprintf(out, "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(out, "Removing login credentials for %s\n", key)
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return fmt.Errorf("remove credentials of %s: %w", key, err)
			}
			return nil
		},
	}
}
