package build

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/engine/runtime"
)

// runIDPrefix starts the runtime IDs of RUN containers, so that a builder
// opening after a crash knows which leftovers are its own.
const runIDPrefix = "berth-build-"

var runtimeDeleteForce = runtime.DeleteOptions{Force: true}

// hostname is what RUN steps see as their host's name, as under BuildKit.
const hostname = "buildkitsandbox"

// runSpec is one RUN step's process.
type runSpec struct {
	args    []string
	env     []string
	user    string
	cwd     string
	network string // host or none
	mounts  []runMount
	script  *instructions.ShellInlineFile // a heredoc run as a file
	extra   []string                      // HOST:IP lines
	shmSize int64
}

// runMount is a RUN --mount, resolved to a host path.
type runMount struct {
	target   string
	source   string // host path (bind, cache); empty for tmpfs
	tmpfs    bool
	size     int64
	readOnly bool
}

// dispatchRun runs a RUN instruction in a container over the stage's
// state; its output streams as the step's events.
func (j *job) dispatchRun(ctx context.Context, sr *stageRun, c *instructions.RunCommand) error {
	st := sr.st
	r := runSpec{env: st.runEnv(j.opts.Args), user: st.config.User, cwd: st.config.WorkingDir, extra: j.opts.ExtraHosts, shmSize: j.opts.ShmSize}
	if r.cwd == "" {
		r.cwd = "/"
	}
	args := c.CmdLine
	if len(c.Files) > 0 {
		if len(args) != 1 || !c.PrependShell {
			return errdefs.ErrInvalidArgument.WithMessage("RUN: a heredoc needs the shell form")
		}
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				// A script with its own interpreter runs as a file.
				r.script = &instructions.ShellInlineFile{Name: c.Files[0].Name, Data: data}
				args = []string{"/dev/pipes/" + c.Files[0].Name}
			} else {
				args = []string{data}
			}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range c.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args = []string{b.String()}
		}
	}
	if r.script == nil {
		args = withShell(st.config, instructions.ShellDependantCmdLine{CmdLine: args, PrependShell: c.PrependShell})
	}
	r.args = args
	r.network = j.opts.Network
	if n := instructions.GetNetwork(c); n != instructions.NetworkDefault {
		r.network = n
	}
	if r.network != "none" {
		r.network = "host"
	}
	if sec := instructions.GetSecurity(c); sec != "" && sec != "sandbox" {
		return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("RUN --security=%s is not supported", sec))
	}
	if len(instructions.GetDevices(c)) > 0 {
		return errdefs.ErrNotImplemented.WithMessage("RUN --device is not supported")
	}
	createdBy := "RUN " + st.argsPrefix() + joinArgs(args)
	keyParts := []string{createdBy, r.network, strings.Join(j.opts.ExtraHosts, ",")}
	if r.script != nil {
		keyParts = append(keyParts, "script", r.script.Data)
	}
	mounts, mountKeys, release, err := j.runMounts(ctx, sr, instructions.GetMounts(c))
	if err != nil {
		return err
	}
	defer release()
	keyParts = append(keyParts, mountKeys...)
	key := chainKey(st.key, keyParts...)
	return j.layerStep(ctx, sr, strings.TrimSpace(commandString(c)), createdBy, key, func(ctx context.Context, ws *workspace, ev *step) ([]string, error) {
		r.mounts = nil
		for _, m := range mounts {
			if m.resolve != nil {
				mm, err := m.resolve(ctx)
				if err != nil {
					return nil, err
				}
				r.mounts = append(r.mounts, mm)
			}
		}
		return j.b.run(ctx, ws, r, ev, sr.stepName(strings.TrimSpace(commandString(c))))
	})
}

// runEnv is a RUN's environment: the image's ENV, then the ARGs in scope
// that no ENV sets, then the proxy args given with --build-arg.
func (st *state) runEnv(buildArgs map[string]string) []string {
	env := append([]string{}, st.config.Env...)
	for _, a := range st.args {
		if _, set := lookupEnv(env, a.name); a.hasValue && !set {
			env = append(env, a.name+"="+a.value)
		}
	}
	names := make([]string, 0, len(proxyArgs))
	for k := range proxyArgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v, ok := buildArgs[k]; ok {
			if _, set := lookupEnv(env, k); !set {
				env = append(env, k+"="+v)
			}
		}
	}
	return env
}

// argsPrefix is how a RUN's history entry shows the build args it saw:
// "|2 A=1 B=2 ", as docker writes it.
func (st *state) argsPrefix() string {
	var parts []string
	for _, a := range st.args {
		if !a.hasValue || proxyArgs[a.name] {
			continue
		}
		v := a.value
		if ev, ok := lookupEnv(st.config.Env, a.name); ok {
			v = ev
		}
		parts = append(parts, a.name+"="+v)
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("|%d %s ", len(parts), strings.Join(parts, " "))
}

// run runs r in a container over the workspace's mount and returns the
// mount targets it made, which are not part of the layer.
func (b *Builder) run(ctx context.Context, ws *workspace, r runSpec, ev *step, name string) ([]string, error) {
	root, err := openFSRoot(ws.rootfs, true)
	if err != nil {
		return nil, err
	}
	defer root.close()
	user, err := lookupUser(root, r.user)
	if err != nil {
		return nil, err
	}
	// The working directory is made when missing, and stays in the layer.
	if _, err := root.stat(r.cwd); errors.Is(err, unix.ENOENT) {
		fd, err := root.mkdirAll(r.cwd, owner{int(user.UID), int(user.GID)})
		if err != nil {
			return nil, fmt.Errorf("working directory %s: %w", r.cwd, err)
		}
		closeFD(fd)
	}
	etc, err := b.etcFiles(ws, r)
	if err != nil {
		return nil, err
	}
	spec, err := runtime.DefaultSpec(runtime.SpecOptions{Args: r.args, Cwd: r.cwd, Hostname: hostname, User: user})
	if err != nil {
		return nil, err
	}
	spec.Process.Env = r.env
	if _, ok := lookupEnv(r.env, "PATH"); !ok {
		spec.Process.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, r.env...)
	}
	if r.network != "none" {
		var nss []specs.LinuxNamespace
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type != specs.NetworkNamespace {
				nss = append(nss, ns)
			}
		}
		spec.Linux.Namespaces = nss
	}
	if r.shmSize > 0 {
		for i, m := range spec.Mounts {
			if m.Destination == "/dev/shm" {
				spec.Mounts[i].Options = append(m.Options[:len(m.Options)-1:len(m.Options)-1], fmt.Sprintf("size=%d", r.shmSize))
			}
		}
	}
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(etc, f), Options: []string{"rbind", "ro"}})
	}
	if r.script != nil {
		p := filepath.Join(ws.dir, "pipes", r.script.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(r.script.Data), 0o755); err != nil {
			return nil, err
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/pipes/" + r.script.Name, Type: "bind", Source: p, Options: []string{"rbind", "ro"}})
	}
	for _, m := range r.mounts {
		if m.tmpfs {
			opts := []string{"nosuid", "nodev"}
			if m.size > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", m.size))
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: m.target, Type: "tmpfs", Source: "tmpfs", Options: opts})
			continue
		}
		opts := []string{"rbind"}
		if m.readOnly {
			opts = append(opts, "ro")
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: m.target, Type: "bind", Source: m.source, Options: opts})
	}
	// Mount targets missing from the state are made by the runtime in the
	// upper dir; they are the build's scaffolding, not the step's output.
	var stubs []string
	for _, m := range spec.Mounts {
		if _, err := root.lstat(m.Destination); errors.Is(err, unix.ENOENT) {
			stubs = append(stubs, m.Destination)
		}
	}
	bundle := filepath.Dir(ws.rootfs)
	if err := runtime.WriteSpec(bundle, spec); err != nil {
		return nil, err
	}
	code, tail, err := b.runContainer(ctx, bundle, ev)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &RunError{Step: name, Command: r.args, ExitCode: code, Output: tail}
	}
	return stubs, nil
}

// etcFiles writes the /etc/hosts, /etc/resolv.conf and /etc/hostname a
// RUN step sees (bind-mounted read-only, so they stay out of the layer).
func (b *Builder) etcFiles(ws *workspace, r runSpec) (string, error) {
	dir := filepath.Join(ws.dir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	hosts := "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range r.extra {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			if name, ip, ok = strings.Cut(h, "="); !ok {
				return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("extra host %q: want HOST:IP", h))
			}
		}
		hosts += ip + "\t" + name + "\n"
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil // no resolver on the host: names do not resolve, as there
	}
	files := map[string][]byte{"hosts": []byte(hosts), "resolv.conf": resolv, "hostname": []byte(hostname + "\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// runContainer creates, starts and waits for the container of bundle, a
// child of this process; its output streams to ev. It returns the exit
// code (128+signal for a killed process) and the last lines printed.
func (b *Builder) runContainer(ctx context.Context, bundle string, ev *step) (int, string, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	id := runIDPrefix + hex.EncodeToString(rnd[:])
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, "", err
	}
	tail := newTail(20, 8<<10)
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Lines longer than the buffer come in pieces rather than stop
		// the reading (a stalled pipe would hang the step).
		br := bufio.NewReaderSize(pr, 64<<10)
		for {
			chunk, err := br.ReadSlice('\n')
			if len(chunk) > 0 {
				line := strings.TrimRight(string(chunk), "\r\n")
				tail.add(line)
				ev.output(line)
			}
			if err != nil && err != bufio.ErrBufferFull {
				break
			}
		}
		pr.Close()
	}()
	p, err := b.rt.Create(ctx, id, bundle, runtime.IO{Stdout: pw, Stderr: pw})
	pw.Close() // the container holds its own copy
	if err != nil {
		<-read
		return 0, "", fmt.Errorf("create RUN container: %w", err)
	}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		if err := b.rt.Delete(cleanup, id, runtimeDeleteForce); err != nil {
			b.log.Warn("builder: delete RUN container", "id", id, "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = b.rt.Kill(cleanup, id, syscall.SIGKILL, true) })
	defer stop()
	var ws unix.WaitStatus
	if err := b.rt.Start(ctx, id); err != nil {
		_ = b.rt.Kill(cleanup, id, syscall.SIGKILL, true)
		unix.Wait4(p.Pid, &ws, 0, nil)
		<-read
		return 0, "", fmt.Errorf("start RUN container: %w", err)
	}
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("wait for RUN container: %w", err)
		}
		break
	}
	<-read
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return code, tail.String(), nil
}

// tail keeps the last lines of a step's output for its error message.
type tail struct {
	lines    []string
	max, cap int
	size     int
}

func newTail(maxLines, maxBytes int) *tail { return &tail{max: maxLines, cap: maxBytes} }

func (t *tail) add(line string) {
	t.lines = append(t.lines, line)
	t.size += len(line) + 1
	for len(t.lines) > t.max || (t.size > t.cap && len(t.lines) > 1) {
		t.size -= len(t.lines[0]) + 1
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }

// mountPlan is a RUN --mount before the step runs: its part of the cache
// key is known, the host path is resolved only when the step runs.
type mountPlan struct {
	resolve func(ctx context.Context) (runMount, error)
}

// runMounts plans a RUN's --mount flags: cache mounts (a directory of the
// state root kept across builds), tmpfs, and read-only binds from the
// context, a stage or an image. It returns the mounts, their parts of the
// step's key, and a release for what they hold.
func (j *job) runMounts(ctx context.Context, sr *stageRun, mounts []*instructions.Mount) ([]mountPlan, []string, func(), error) {
	var plans []mountPlan
	var keys []string
	var releases []func()
	release := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	fail := func(err error) ([]mountPlan, []string, func(), error) {
		release()
		return nil, nil, func() {}, err
	}
	for _, m := range mounts {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", sr.st.config.WorkingDir, target)
		}
		switch m.Type {
		case instructions.MountTypeTmpfs:
			mm := runMount{target: target, tmpfs: true, size: m.SizeLimit}
			plans = append(plans, mountPlan{resolve: func(context.Context) (runMount, error) { return mm, nil }})
			keys = append(keys, fmt.Sprintf("tmpfs:%s:%d", target, m.SizeLimit))
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = target
			}
			plan, err := j.cacheMount(id, target, m, &releases)
			if err != nil {
				return fail(err)
			}
			plans = append(plans, plan)
			keys = append(keys, fmt.Sprintf("cache:%s:%s:%v", target, id, m.ReadOnly))
		case instructions.MountTypeBind:
			if !m.ReadOnly {
				return fail(errdefs.ErrNotImplemented.WithMessage("RUN --mount=type=bind,rw is not supported: bind mounts are read-only"))
			}
			plan, key, err := j.bindMount(ctx, sr, m, target, &releases)
			if err != nil {
				return fail(err)
			}
			plans = append(plans, plan)
			keys = append(keys, key)
		case instructions.MountTypeSecret:
			plan, key, ok, err := j.secretMount(m, &releases)
			if err != nil {
				return fail(err)
			}
			if ok {
				plans = append(plans, plan)
				keys = append(keys, key)
			}
		case instructions.MountTypeSSH:
			if m.Required {
				return fail(errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("RUN --mount=type=%s is not supported", m.Type)))
			}
			j.steps.warn(fmt.Sprintf("RUN --mount=type=%s: not supported; the step runs without it", m.Type))
		default:
			return fail(errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("RUN --mount=type=%s is not supported", m.Type)))
		}
	}
	return plans, keys, release, nil
}

// secretMount plans a secret mount, as buildkit has it: the secret named
// by id (else source, else the target's base name) as a read-only file at
// the target (else /run/secrets/ID), mode 0400 unless set. A secret that
// was not given is left out, or fails the step when it is required. The
// key names the secret, not its value: a new value reuses the cache, as
// with buildkit.
func (j *job) secretMount(m *instructions.Mount, releases *[]func()) (mountPlan, string, bool, error) {
	id := m.CacheID
	if id == "" {
		id = m.Source
	}
	if id == "" {
		id = path.Base(m.Target)
	}
	if m.Env != nil {
		return mountPlan{}, "", false, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("RUN --mount=type=secret,id=%s,env=: secrets as variables are not supported; mount it as a file", id))
	}
	data, ok := j.opts.Secrets[id]
	if !ok {
		if m.Required {
			return mountPlan{}, "", false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("RUN --mount=type=secret,id=%s,required: no secret %s was given (build.secrets)", id, id))
		}
		return mountPlan{}, "", false, nil
	}
	target := m.Target
	if target == "" {
		target = "/run/secrets/" + path.Base(id)
	}
	mode, uid, gid := os.FileMode(0o400), 0, 0
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode).Perm()
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	resolve := func(context.Context) (runMount, error) {
		dir, err := os.MkdirTemp(filepath.Join(j.b.dir, "tmp"), "secret-")
		if err != nil {
			return runMount{}, err
		}
		*releases = append(*releases, func() { os.RemoveAll(dir) })
		file := filepath.Join(dir, "secret")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return runMount{}, fmt.Errorf("secret %s: %w", id, err)
		}
		if err := os.Chown(file, uid, gid); err != nil {
			return runMount{}, fmt.Errorf("secret %s: %w", id, err)
		}
		if err := os.Chmod(file, mode); err != nil {
			return runMount{}, fmt.Errorf("secret %s: %w", id, err)
		}
		return runMount{target: target, source: file, readOnly: true}, nil
	}
	return mountPlan{resolve: resolve}, fmt.Sprintf("secret:%s:%s", id, target), true, nil
}

// cacheMount plans a cache mount: ROOT/build/mounts/HASH, made with the
// mount's mode and owner the first time, locked while a step uses it when
// its sharing is locked or private.
func (j *job) cacheMount(id, target string, m *instructions.Mount, releases *[]func()) (mountPlan, error) {
	dir := filepath.Join(j.b.dir, "mounts", hex.EncodeToString([]byte(id)))
	if len(dir) > 200 {
		sum := chainKey("", id)
		dir = filepath.Join(j.b.dir, "mounts", sum)
	}
	resolve := func(ctx context.Context) (runMount, error) {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			mode, uid, gid := os.FileMode(0o755), 0, 0
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode)
			}
			if m.UID != nil {
				uid = int(*m.UID)
			}
			if m.GID != nil {
				gid = int(*m.GID)
			}
			if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, os.ErrExist) {
				return runMount{}, err
			}
			if err := errors.Join(os.Chown(dir, uid, gid), os.Chmod(dir, mode)); err != nil {
				return runMount{}, err
			}
		}
		mm := runMount{target: target, source: dir, readOnly: m.ReadOnly}
		if m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate {
			lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
			if err != nil {
				return runMount{}, err
			}
			if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
				lock.Close()
				return runMount{}, err
			}
			*releases = append(*releases, func() { lock.Close() })
		}
		return mm, nil
	}
	return mountPlan{resolve: resolve}, nil
}
