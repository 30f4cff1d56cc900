package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/compose-spec/compose-go/v2/utils"
	"github.com/containerd/errdefs"
	"go.yaml.in/yaml/v4"
)

// Options say which Compose files to load and how, in the words of docker
// compose's global flags.
//
// What docker compose takes from its process (environment, current
// directory, stdin) is passed in here instead, so that the daemon can
// reload a project with the environment of the user who started it, and so
// that tests can load projects in parallel.
type Options struct {
	// Files are the -f files, merged in order; "-" is Stdin. None means
	// COMPOSE_FILE, or compose.yaml (and its override) found in the project
	// directory or, without --project-directory, in the current directory
	// or its parents.
	Files            []string
	ProjectName      string   // -p
	ProjectDirectory string   // --project-directory
	Profiles         []string // --profile; none means COMPOSE_PROFILES
	// EnvFiles are the --env-file files; none means the project
	// directory's .env (unless COMPOSE_DISABLE_ENV_FILE).
	EnvFiles []string
	// Services restricts the project to these services and those they
	// depend on; services they name are enabled whatever their profiles.
	Services []string

	// Environ is the user's environment as KEY=VALUE (os.Environ() in the
	// CLI): the interpolation variables, and COMPOSE_FILE,
	// COMPOSE_PROJECT_NAME, COMPOSE_PROFILES, COMPOSE_PATH_SEPARATOR,
	// COMPOSE_DISABLE_ENV_FILE.
	Environ []string
	// WorkDir is the user's current directory; relative paths above are
	// taken from it. Empty means the process's.
	WorkDir string
	// Stdin is read for a file "-". It stays on the side that loads.
	Stdin io.Reader `json:"-"`

	// Warn receives the warnings docker compose prints (several candidate
	// files found, ...). Nil drops them.
	Warn func(string) `json:"-"`
}

// RenderOptions are `config`'s switches that show the files less resolved
// than berth runs them. With any of them set, Render loads the files
// again as docker compose does and prints them without making a Project.
type RenderOptions struct {
	NoInterpolate    bool // --no-interpolate
	NoNormalize      bool // --no-normalize
	NoPathResolution bool // --no-path-resolution
}

// ErrNoComposeFile is the class of "no Compose file found" (errdefs not found).
var ErrNoComposeFile = fmt.Errorf("no configuration file provided: %w", errdefs.ErrNotFound)

// Load reads the Compose files as docker compose v5 does and converts them
// into berth's desired state. An error about the files is an *Error.
func Load(ctx context.Context, opts Options) (*Project, error) {
	ld, err := newLoad(opts)
	if err != nil {
		return nil, err
	}
	cp, err := ld.project(ctx, RenderOptions{})
	if err != nil {
		return nil, err
	}
	p, err := convert(cp, ld.srcs)
	if err != nil {
		return nil, err
	}
	p.EnvFiles = ld.envFiles
	return p, nil
}

// load is one loading of a project: docker compose's option chain
// (cmd/compose/compose.go toProjectOptions and compose-go's cli package)
// played over explicit inputs.
type load struct {
	opts       Options
	workDir    string
	env        types.Mapping
	files      []string
	projectDir string
	envFiles   []string
	profiles   []string
	srcs       sources
}

func newLoad(opts Options) (*load, error) {
	ld := &load{opts: opts, workDir: opts.WorkDir}
	if ld.workDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("current directory: %w", err)
		}
		ld.workDir = wd
	}
	ld.env = types.Mapping(utils.GetAsEqualsMap(opts.Environ))
	if _, ok := ld.env["PWD"]; !ok {
		ld.env["PWD"] = ld.workDir
	}
	for _, f := range opts.Files {
		if f != "-" {
			f = ld.abs(f)
		}
		ld.files = append(ld.files, f)
	}
	if opts.ProjectDirectory != "" {
		ld.projectDir = ld.abs(opts.ProjectDirectory)
	}
	explicitEnvFiles := make([]string, 0, len(opts.EnvFiles))
	for _, f := range opts.EnvFiles {
		explicitEnvFiles = append(explicitEnvFiles, ld.abs(ld.expandUser(f)))
	}
	if opts.ProjectName != "" && opts.ProjectName != loader.NormalizeProjectName(opts.ProjectName) {
		return nil, fmt.Errorf("%w: %w", loader.InvalidProjectNameErr(opts.ProjectName), errdefs.ErrInvalidArgument)
	}

	// The order is docker compose's: .env of the first guess of the
	// project directory, COMPOSE_FILE, file discovery, then .env again
	// for the directory the files were found in.
	if err := ld.readEnvFiles(explicitEnvFiles); err != nil {
		return nil, err
	}
	if err := ld.composeFileEnv(); err != nil {
		return nil, err
	}
	ld.discover()
	if err := ld.readEnvFiles(explicitEnvFiles); err != nil {
		return nil, err
	}
	ld.profiles = opts.Profiles
	if len(ld.profiles) == 0 {
		for _, p := range strings.Split(ld.env[consts.ComposeProfiles], ",") {
			ld.profiles = append(ld.profiles, strings.TrimSpace(p))
		}
	}
	return ld, nil
}

func (ld *load) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(ld.workDir, p)
}

func (ld *load) expandUser(p string) string {
	if strings.HasPrefix(p, "~") {
		if home := ld.env["HOME"]; home != "" {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

func (ld *load) warn(format string, args ...any) {
	if ld.opts.Warn != nil {
		ld.opts.Warn(fmt.Sprintf(format, args...))
	}
}

// projectDirectory is compose-go's GetWorkingDir: --project-directory, or
// the directory of the first file, or the current directory.
func (ld *load) projectDirectory() string {
	if ld.projectDir != "" {
		return ld.projectDir
	}
	for _, f := range ld.files {
		if f != "-" {
			return filepath.Dir(f)
		}
	}
	return ld.workDir
}

// readEnvFiles is cli.WithEnvFiles followed by cli.WithDotEnv. Values
// already set (by the environment, or by an earlier pass) win.
func (ld *load) readEnvFiles(explicit []string) error {
	if len(explicit) > 0 {
		ld.envFiles = explicit
	} else if disabled, err := ld.defaultEnvFileDisabled(); err != nil {
		return err
	} else if !disabled {
		dotEnv := filepath.Join(ld.projectDirectory(), ".env")
		if st, err := os.Stat(dotEnv); err == nil && !st.IsDir() {
			ld.envFiles = []string{dotEnv}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("env file %s: %w", dotEnv, err)
		}
	}
	values, err := dotenv.GetEnvFromFile(ld.env, ld.envFiles)
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	ld.env.Merge(values)
	return nil
}

// defaultEnvFileDisabled reads COMPOSE_DISABLE_ENV_FILE.
func (ld *load) defaultEnvFileDisabled() (bool, error) {
	v, ok := ld.env[consts.ComposeDisableDefaultEnvFile]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w: %w", consts.ComposeDisableDefaultEnvFile, err, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// composeFileEnv is cli.WithConfigFileEnv: COMPOSE_FILE when no -f.
func (ld *load) composeFileEnv() error {
	if len(ld.files) > 0 {
		return nil
	}
	value, ok := ld.env[consts.ComposeFilePath]
	if !ok {
		return nil
	}
	sep := ld.env[consts.ComposePathSeparator]
	if sep == "" {
		sep = string(os.PathListSeparator)
	}
	for _, f := range strings.Split(value, sep) {
		if f != "-" {
			f = ld.abs(f)
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("COMPOSE_FILE: %w", err)
			}
		}
		ld.files = append(ld.files, f)
	}
	return nil
}

// discover is cli.WithDefaultConfigPath: compose.yaml and friends in the
// project directory or, going up, its parents; and the override file next
// to the one found.
func (ld *load) discover() {
	if len(ld.files) > 0 {
		return
	}
	dir := ld.projectDirectory()
	for {
		found := existing(dir, cli.DefaultFileNames)
		if len(found) > 0 {
			if len(found) > 1 {
				ld.warn("Found multiple config files with supported names: %s", strings.Join(found, ", "))
				ld.warn("Using %s", found[0])
			}
			ld.files = append(ld.files, found[0])
			overrides := existing(dir, cli.DefaultOverrideFileNames)
			if len(overrides) > 1 {
				ld.warn("Found multiple override files with supported names: %s", strings.Join(overrides, ", "))
				ld.warn("Using %s", overrides[0])
			}
			if len(overrides) > 0 {
				ld.files = append(ld.files, overrides[0])
			}
			return
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
}

func existing(dir string, names []string) []string {
	var found []string
	for _, n := range names {
		f := filepath.Join(dir, n)
		if _, err := os.Stat(f); err == nil {
			found = append(found, f)
		}
	}
	return found
}

// details reads the files: compose-go's LoadConfigFiles and
// ReadConfigFiles, with stdin from Options.
func (ld *load) details(ctx context.Context) (*types.ConfigDetails, error) {
	if len(ld.files) == 0 {
		return nil, ErrNoComposeFile
	}
	details, err := loader.LoadConfigFiles(ctx, ld.files, ld.projectDirectory())
	if err != nil {
		return nil, err
	}
	var stdin []byte
	names := make([]string, len(details.ConfigFiles))
	contents := make([][]byte, len(details.ConfigFiles))
	for i, f := range details.ConfigFiles {
		var b []byte
		if f.IsStdin() {
			if stdin == nil && ld.opts.Stdin != nil {
				if stdin, err = io.ReadAll(ld.opts.Stdin); err != nil {
					return nil, fmt.Errorf("read compose file from stdin: %w", err)
				}
			}
			b = stdin
			if b == nil {
				b = []byte{}
			}
		} else if b, err = os.ReadFile(f.Filename); err != nil {
			return nil, fmt.Errorf("read compose file: %w", err)
		}
		details.ConfigFiles[i].Content = b
		names[i], contents[i] = f.Filename, b
	}
	if ld.srcs, err = parseSources(names, contents, ld.projectDirectory()); err != nil {
		return nil, err
	}
	details.Environment = ld.env
	return details, nil
}

// loadOptions are the loader options of `docker compose config`.
func (ld *load) loadOptions(details *types.ConfigDetails, r RenderOptions) ([]func(*loader.Options), error) {
	named := false
	if ld.opts.ProjectName == "" {
		for _, f := range details.ConfigFiles {
			if hasName(f.Content) {
				named = true
				break
			}
		}
	}
	return []func(*loader.Options){
		func(o *loader.Options) {
			o.SkipInterpolation = r.NoInterpolate
			o.ResolvePaths = !r.NoPathResolution
			o.SkipNormalization = r.NoNormalize
		},
		loader.WithDiscardEnvFiles,
		loader.WithProfiles(ld.profiles),
		// cli's withNamePrecedenceLoad: -p, COMPOSE_PROJECT_NAME, name:,
		// then the project directory's name.
		func(o *loader.Options) {
			switch {
			case ld.opts.ProjectName != "":
				o.SetProjectName(ld.opts.ProjectName, true)
			case ld.env[consts.ComposeProjectName] != "":
				o.SetProjectName(ld.env[consts.ComposeProjectName], true)
			case !named:
				o.SetProjectName(loader.NormalizeProjectName(filepath.Base(details.WorkingDir)), false)
			}
		},
		func(o *loader.Options) {
			if o.ResolvePaths {
				o.ConvertWindowsPaths = utils.StringToBool(ld.env["COMPOSE_CONVERT_WINDOWS_PATHS"])
			}
		},
	}, nil
}

// project loads the compose-go project as `docker compose config` does,
// including docker compose's post-processing (service selection, unused
// networks and volumes dropped, container names unique).
func (ld *load) project(ctx context.Context, r RenderOptions) (*types.Project, error) {
	details, err := ld.details(ctx)
	if err != nil {
		return nil, err
	}
	lo, err := ld.loadOptions(details, r)
	if err != nil {
		return nil, err
	}
	var cp *types.Project
	err = safely(func() (err error) {
		cp, err = loader.LoadWithContext(ctx, *details, lo...)
		return err
	})
	if err != nil {
		return nil, ld.srcs.locateIn(err, ld.env)
	}
	for _, f := range details.ConfigFiles {
		cp.ComposeFiles = append(cp.ComposeFiles, f.Filename)
	}
	if cp.Name == "" {
		return nil, fmt.Errorf("project name can't be empty: use -p to set one: %w", errdefs.ErrInvalidArgument)
	}
	if cp, err = cp.WithServicesEnabled(ld.opts.Services...); err != nil {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	}
	if cp, err = cp.WithSelectedServices(ld.opts.Services); err != nil {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	}
	cp = cp.WithoutUnnecessaryResources()
	if err := cp.CheckContainerNameUnicity(); err != nil {
		return nil, ld.srcs.locate(err)
	}
	return cp, nil
}

// model loads the files as a raw tree, as `config --no-interpolate` does.
func (ld *load) model(ctx context.Context, r RenderOptions) (map[string]any, error) {
	details, err := ld.details(ctx)
	if err != nil {
		return nil, err
	}
	lo, err := ld.loadOptions(details, r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	err = safely(func() (err error) {
		m, err = loader.LoadModelWithContext(ctx, *details, lo...)
		return err
	})
	if err != nil {
		return nil, ld.srcs.locateIn(err, ld.env)
	}
	return m, nil
}

// hasName is what compose-go's cli checks before loading: whether a file
// sets the project name.
func hasName(content []byte) bool {
	var n struct {
		Name string `yaml:"name,omitempty"`
	}
	return yaml.Unmarshal(content, &n) == nil && n.Name != ""
}

// safely runs a call into compose-go's loader, turning a panic into an
// error. compose-go v2.14.0 (and docker compose v5.5.0 with it) panics on
// some malformed files, found by FuzzLoad: a secrets entry with a null
// target (`- target:`) makes override.mountIndexer assert a nil to string.
// A bad file must be an error the user can act on, not a crash of the CLI
// or of the daemon reloading it.
func safely(call func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compose-go could not read this file (it panicked: %v); docker compose fails on it too: %w", r, errdefs.ErrInvalidArgument)
		}
	}()
	return call()
}
