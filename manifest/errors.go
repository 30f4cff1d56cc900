package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// Error is a Compose file berth refuses, located as precisely as the
// message allows: compose-go names a key path in most of its errors
// (services.web.ports), berth finds that path in the files it read to give
// the file and line. Fields are empty when unknown. An Error is an
// errdefs invalid-argument error.
type Error struct {
	File    string // the Compose file, absolute ("-" for stdin)
	Line    int    // 1-based; 0 when unknown
	Column  int
	Service string // the service the error is about
	Key     string // the key within the service, or the top-level path, dotted
	Err     error
	// message replaces Err's text when the location above makes part of it
	// redundant ("validating FILE: ...").
	message string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteString(": ")
	}
	if e.Service != "" {
		fmt.Fprintf(&b, "service %q: ", e.Service)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	if e.message != "" {
		b.WriteString(e.message)
	} else {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap gives the cause and the invalid-argument class, so that errors.Is
// works with both and the class crosses the API socket.
func (e *Error) Unwrap() []error { return []error{e.Err, errdefs.ErrInvalidArgument} }

// Patterns of compose-go's messages that name where the problem is.
var (
	// validating /x/compose.yaml: services.web additional properties 'foo' not allowed
	reValidating = regexp.MustCompile(`^validating (.+?): (.*)$`)
	// 'services[web].mem_limit' invalid size (mapstructure)
	reBracketPath = regexp.MustCompile(`'((?:services|networks|volumes|secrets|configs|include)\[[^\]]+\][^' ]*)'`)
	// services.web.privileged: ... / error while interpolating services.web.image: ...
	reDottedPath = regexp.MustCompile(`\b((?:services|networks|volumes|secrets|configs|models|include|name)(?:\.[^\s:'"]+)*)`)
	// additional properties 'foo' not allowed
	reAdditional = regexp.MustCompile(`additional propert(?:y|ies) '([^']+)'`)
	// service "web" depends on undefined service "db"
	reServiceQuoted = regexp.MustCompile(`service "([^"]+)"`)
	// dependency cycle detected: a -> b -> a
	reCycle = regexp.MustCompile(`dependency cycle detected: ([^\s]+) ->`)
	// Circular reference:\n  a in /x/compose.yaml\n  extends b in ...
	reExtendsCycle = regexp.MustCompile(`Circular reference:\s+(\S+) in `)
	// services.scale: can't set container_name and web as container name
	// must be unique (compose-go swaps its arguments)
	reContainerName = regexp.MustCompile(`can't set container_name and (\S+) as container name`)
	// failed to parse /x/inc.yaml: go-yaml load error in scanner at L4.C11: ...
	reParseFailed = regexp.MustCompile(`failed to parse (\S+): .*?\bL(\d+)(?:\.C(\d+))?`)
	// env file /x/missing.env not found
	reEnvFile = regexp.MustCompile(`env file (\S+) not found`)
)

// keyHints map words of compose-go's service-level messages to the key
// they are about.
var keyHints = []struct{ words, key string }{
	{"depends on", "depends_on"},
	{"required by", "depends_on"},
	{"undefined network", "networks"},
	{"network_mode", "network_mode"},
	{"undefined volume", "volumes"},
	{"undefined secret", "secrets"},
	{"undefined build secret", "build.secrets"},
	{"undefined config", "configs"},
	{"undefined model", "models"},
	{"additional contexts", "build.additional_contexts"},
	{"dockerfile and dockerfile_inline", "build"},
	{"neither an image nor a build context", "image"},
	{"container name", "container_name"},
	{"healthcheck", "healthcheck"},
}

// locate turns an error of compose-go into an *Error naming file, service,
// key and line where the message allows it. When it does not, the error is
// still an *Error, with what is known.
func (ss sources) locate(err error) error {
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	msg := err.Error()
	e := &Error{Err: err}
	var path []string
	if m := reValidating.FindStringSubmatch(msg); m != nil {
		e.File = m[1]
		msg = m[2]
		e.message = msg
	}
	if rest, ok := strings.CutPrefix(msg, "decoding failed due to the following error(s):"); ok {
		e.message = strings.TrimSpace(rest)
	}
	switch {
	case reContainerName.MatchString(msg):
		path = []string{"services", reContainerName.FindStringSubmatch(msg)[1], "container_name"}
	case reExtendsCycle.MatchString(msg):
		path = []string{"services", reExtendsCycle.FindStringSubmatch(msg)[1], "extends"}
	case reBracketPath.MatchString(msg):
		p := reBracketPath.FindStringSubmatch(msg)[1]
		p = strings.NewReplacer("[", ".", "]", "").Replace(p)
		path = strings.Split(p, ".")
	case reCycle.MatchString(msg):
		path = []string{"services", reCycle.FindStringSubmatch(msg)[1], "depends_on"}
	case reServiceQuoted.MatchString(msg) && !strings.HasPrefix(msg, "services."):
		path = []string{"services", reServiceQuoted.FindStringSubmatch(msg)[1]}
		for _, h := range keyHints {
			if strings.Contains(msg, h.words) {
				path = append(path, strings.Split(h.key, ".")...)
				break
			}
		}
	case reDottedPath.MatchString(msg):
		for _, step := range strings.Split(reDottedPath.FindStringSubmatch(msg)[1], ".") {
			// compose-go writes list indexes as [0]
			path = append(path, strings.Trim(step, "[]"))
		}
	}
	if m := reAdditional.FindStringSubmatch(msg); m != nil {
		// at the top level the schema's path is empty
		path = append(path, m[1])
		e.message = strings.TrimSpace(msg)
	}
	e.setPath(path)
	if len(path) > 0 {
		if file, line, col, depth := ss.find(path); depth > 0 {
			e.File, e.Line, e.Column = file, line, col
		}
	}
	if m := reParseFailed.FindStringSubmatch(msg); m != nil {
		e.File = m[1]
		e.Line, _ = strconv.Atoi(m[2])
		e.Column, _ = strconv.Atoi(m[3])
	}
	if e.File == "" && len(path) == 0 {
		// nothing in the message says where: with one file, it is that one
		var top []string
		for _, s := range ss {
			if s.top {
				top = append(top, s.file)
			}
		}
		if len(top) == 1 {
			e.File = top[0]
		}
	}
	return e
}

// setPath fills Service and Key from a dotted path.
func (e *Error) setPath(path []string) {
	if len(path) >= 2 && path[0] == "services" {
		e.Service = path[1]
		e.Key = strings.Join(path[2:], ".")
		return
	}
	e.Key = strings.Join(path, ".")
}

// refuse makes the error of something berth does not run, at the given
// path of the files.
func (ss sources) refuse(path []string, format string, args ...any) error {
	e := &Error{Err: fmt.Errorf(format, args...)}
	e.setPath(path)
	if file, line, col, depth := ss.find(path); depth > 0 {
		e.File, e.Line, e.Column = file, line, col
	}
	return e
}
