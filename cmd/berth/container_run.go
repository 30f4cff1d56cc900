package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/container"
)

type runFlags struct {
	createFlags
	detach, rm, sigProxy bool
	detachKeys           string
}

func newContainerRunCommand(opts *globalOptions) *cobra.Command {
	o := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Example: "  berth container run --rm busybox echo hello\n" +
			"  berth container run -it --rm busybox sh\n" +
			"  berth container run -d --name web -p 8080:80 busybox httpd -f",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(cmd, opts, o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	o.register(f)
	f.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	f.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its anonymous volumes when it exits")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container (default \""+defaultDetachKeys+"\")")
	return cmd
}

// runContainer is `run`: create, then (attached) attach, wait for the next
// exit, start, copy the streams and exit with the container's code.
func runContainer(cmd *cobra.Command, opts *globalOptions, o *runFlags, imageRef string, args []string) error {
	if o.tty && o.interactive && !o.detach && !term.IsTerminal(int(os.Stdin.Fd())) {
		return &exitError{code: 1, err: errNotATTY}
	}
	detachKeys, err := parseDetachKeys(o.detachKeys)
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	cfg, err := o.config(cmd, imageRef, args)
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	cfg.AutoRemove = o.rm
	cfg.StdinOnce = o.interactive && !o.detach
	cc, done, err := containers(cmd, opts)
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	defer done()
	c, err := createContainer(cmd, opts, cc, cfg)
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	if o.detach {
		if err := cc.Start(cmd.Context(), c.ID); err != nil {
			return &exitError{code: exitCodeOf(err), err: err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), c.ID)
		return nil
	}
	return attachedRun(cmd, cc, c, o.interactive, o.sigProxy, detachKeys)
}

// attachedRun attaches to c, starts it and copies its streams until it
// ends; the command exits with the container's exit code, or 0 when the
// user typed detachKeys on stdin (the container runs on).
func attachedRun(cmd *cobra.Command, cc *api.ContainerClient, c container.Container, stdin, sigProxy bool, detachKeys []byte) error {
	ctx := cmd.Context()
	// Attach first (the answer comes once the attach is in place), then
	// the wait, then the start: no output and no exit can be missed.
	conn, err := cc.Attach(ctx, c.ID, api.AttachOptions{Stdin: stdin, Stdout: true, Stderr: true})
	if err != nil {
		return &exitError{code: 125, err: err}
	}
	waitCtx, cancelWait := context.WithCancel(waitCtx(ctx))
	defer cancelWait()
	exited, err := cc.WaitNextExit(waitCtx, c.ID)
	if err != nil {
		conn.Close()
		return &exitError{code: 125, err: err}
	}
	if err := cc.Start(ctx, c.ID); err != nil {
		conn.Close()
		if c.Config.AutoRemove {
			_ = cc.Remove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true, Volumes: true})
		}
		return &exitError{code: exitCodeOf(err), err: err}
	}
	s := streamSession{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), tty: c.Config.Tty}
	if stdin {
		s.stdin, s.detachKeys = cmd.InOrStdin(), detachKeys
	}
	if c.Config.Tty {
		s.resize = func(rows, cols uint) error { return cc.Resize(ctx, c.ID, rows, cols) }
	} else if sigProxy {
		defer proxySignals(ctx, func(ctx context.Context, sig string) error { return cc.Kill(ctx, c.ID, sig) })()
	}
	if err := s.run(ctx, conn); errors.Is(err, errDetached) {
		return nil
	} else if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	res := <-exited
	if res.Err != nil {
		return res.Err
	}
	if res.StatusCode != 0 {
		return &exitError{code: res.StatusCode}
	}
	return nil
}

// attachFlags are the options of `container attach` and compose `attach`.
type attachFlags struct {
	noStdin, sigProxy bool
	detachKeys        string
}

func (o *attachFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&o.noStdin, "no-stdin", false, "Do not attach STDIN")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container (default \""+defaultDetachKeys+"\")")
}

func newContainerAttachCommand(opts *globalOptions) *cobra.Command {
	o := &attachFlags{}
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return attachRunning(cmd, opts, o, args[0])
		},
	}
	o.register(cmd.Flags())
	return cmd
}

// attachRunning copies the streams of running container ref until its
// output ends, then exits with the container's code; or with 0 when the
// user typed the detach keys (the container runs on).
func attachRunning(cmd *cobra.Command, opts *globalOptions, o *attachFlags, ref string) error {
	ctx := cmd.Context()
	keys, err := parseDetachKeys(o.detachKeys)
	if err != nil {
		return err
	}
	cc, done, err := containers(cmd, opts)
	if err != nil {
		return err
	}
	defer done()
	c, err := cc.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != container.Running && c.State.Status != container.Paused {
		return errors.New("you cannot attach to a stopped container, start it first")
	}
	stdin := !o.noStdin && c.Config.OpenStdin
	if stdin && c.Config.Tty && !term.IsTerminal(int(os.Stdin.Fd())) {
		return errNotATTY
	}
	conn, err := cc.Attach(ctx, c.ID, api.AttachOptions{Stdin: stdin, Stdout: true, Stderr: true})
	if err != nil {
		return err
	}
	s := streamSession{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), tty: c.Config.Tty}
	if stdin {
		s.stdin, s.detachKeys = cmd.InOrStdin(), keys
	}
	if c.Config.Tty {
		s.resize = func(rows, cols uint) error { return cc.Resize(ctx, c.ID, rows, cols) }
	} else if o.sigProxy {
		defer proxySignals(ctx, func(ctx context.Context, sig string) error { return cc.Kill(ctx, c.ID, sig) })()
	}
	if err := s.run(ctx, conn); errors.Is(err, errDetached) {
		return nil
	} else if err != nil {
		return err
	}
	// The output ended: the container stopped; pass on its code.
	code, err := cc.Wait(waitCtx(ctx), c.ID)
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

type execFlags struct {
	detach, interactive, tty, privileged bool
	user, workdir, detachKeys            string
	env, envFiles                        []string
}

func newContainerExecCommand(opts *globalOptions) *cobra.Command {
	o := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Example: "  berth container exec web ls /\n" +
			"  berth container exec -it web sh",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return execInContainer(cmd, opts, o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	f.StringArrayVar(&o.envFiles, "env-file", nil, "Read in a file of environment variables")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container (default \""+defaultDetachKeys+"\")")
	return cmd
}

// execInContainer is `exec`; the command exits with the process's code.
func execInContainer(cmd *cobra.Command, opts *globalOptions, o *execFlags, ref string, args []string) error {
	ctx := cmd.Context()
	if o.tty && o.interactive && !o.detach && !term.IsTerminal(int(os.Stdin.Fd())) {
		return &exitError{code: 1, err: errNotATTY}
	}
	env, err := readEnv(o.envFiles, o.env)
	if err != nil {
		return err
	}
	detachKeys, err := parseDetachKeys(o.detachKeys)
	if err != nil {
		return err
	}
	cc, done, err := containers(cmd, opts)
	if err != nil {
		return err
	}
	defer done()
	cfg := container.ExecConfig{
		Cmd: args, Env: env, User: o.user, WorkingDir: o.workdir, Tty: o.tty,
		AttachStdin: o.interactive && !o.detach, Privileged: o.privileged,
	}
	if rows, cols, ok := terminalSize(); ok && o.tty {
		cfg.ConsoleSize = [2]uint{rows, cols}
	}
	id, err := cc.CreateExec(ctx, ref, cfg)
	if err != nil {
		return err
	}
	if o.detach {
		return cc.StartExecDetached(ctx, id)
	}
	conn, err := cc.StartExec(ctx, id)
	if err != nil {
		return err
	}
	s := streamSession{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), tty: o.tty}
	if cfg.AttachStdin {
		s.stdin, s.detachKeys = cmd.InOrStdin(), detachKeys
	}
	if o.tty {
		s.resize = func(rows, cols uint) error { return cc.ResizeExec(ctx, id, rows, cols) }
	}
	if err := s.run(ctx, conn); errors.Is(err, errDetached) {
		return nil // the process runs on
	} else if err != nil {
		return err
	}
	st, err := cc.InspectExec(waitCtx(ctx), id)
	if err != nil {
		return err
	}
	if st.ExitCode == nil {
		return &exitError{code: 126, err: fmt.Errorf("exec %s: no exit code", id)}
	}
	if *st.ExitCode != 0 {
		return &exitError{code: *st.ExitCode}
	}
	return nil
}
