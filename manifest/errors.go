package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"go.yaml.in/yaml/v4"
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

// source is one Compose file as berth parsed it on the side, to find where
// a key path is.
type source struct {
	file  string
	roots []*yaml.Node // each document's top mapping
	top   bool         // given to the loader, not included or extended from
}

// sources are the files of a load, in merge order.
type sources []source

// parseSources parses each file, and reports the first YAML syntax error
// with its file and line (compose-go's own message names neither file nor,
// in every case, line). The files they include or extend from are parsed
// too, when berth can find them, so that errors in those are placed as
// well; they come first, as their content is merged under the others'.
func parseSources(files []string, contents [][]byte, projectDir string) (sources, error) {
	var top, referenced sources
	seen := map[string]bool{}
	for i, content := range contents {
		src, err := parseSource(files[i], content)
		if err != nil {
			return nil, err
		}
		src.top = true
		top = append(top, src)
		seen[files[i]] = true
	}
	var walk func(src source, depth int)
	walk = func(src source, depth int) {
		if depth > maxReferenceDepth {
			return
		}
		for _, path := range src.references(projectDir) {
			if seen[path] {
				continue
			}
			seen[path] = true
			b, err := readSmallFile(path)
			if err != nil {
				continue
			}
			// a syntax error here is compose-go's to report, when it loads
			// the file: berth may have guessed the path wrong
			s, err := parseSource(path, b)
			if err != nil {
				continue
			}
			referenced = append([]source{s}, referenced...)
			walk(s, depth+1)
		}
	}
	for _, s := range top {
		walk(s, 0)
	}
	return append(referenced, top...), nil
}

// maxReferenceDepth bounds how deep includes of includes are followed for
// error placement.
const maxReferenceDepth = 8

func parseSource(file string, content []byte) (source, error) {
	src := source{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return src, syntaxError(file, err)
		}
		if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
			src.roots = append(src.roots, doc.Content[0])
		}
	}
	return src, nil
}

// readSmallFile reads a regular file of a reasonable size: a Compose file
// naming /dev/zero must not make berth read forever to place an error.
func readSmallFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > 4<<20 {
		return nil, fmt.Errorf("%s: not a small regular file", path)
	}
	return os.ReadFile(path)
}

// references are the local files a source includes (include:) or extends
// services from (extends.file), made absolute.
func (src source) references(projectDir string) []string {
	var rel []string
	for _, root := range src.roots {
		if inc := valueOf(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
			for _, item := range inc.Content {
				switch item.Kind {
				case yaml.ScalarNode:
					rel = append(rel, item.Value)
				case yaml.MappingNode:
					rel = append(rel, scalars(valueOf(item, "path"))...)
				}
			}
		}
		if services := valueOf(root, "services"); services != nil && services.Kind == yaml.MappingNode {
			for i := 1; i < len(services.Content); i += 2 {
				if ext := valueOf(services.Content[i], "extends"); ext != nil {
					rel = append(rel, scalars(valueOf(ext, "file"))...)
				}
			}
		}
	}
	var out []string
	for _, p := range rel {
		if p == "" || strings.ContainsAny(p, "$") || strings.Contains(p, "://") || strings.HasPrefix(p, "git@") || strings.HasPrefix(p, "oci:") {
			continue
		}
		candidates := []string{p}
		if !filepath.IsAbs(p) {
			candidates = nil
			if src.file != "-" {
				candidates = append(candidates, filepath.Join(filepath.Dir(src.file), p))
			}
			candidates = append(candidates, filepath.Join(projectDir, p))
		}
		for _, c := range candidates {
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// scalars are the string values of a scalar or a sequence of scalars.
func scalars(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	if n.Kind == yaml.SequenceNode {
		for _, item := range n.Content {
			if item.Kind == yaml.ScalarNode {
				out = append(out, item.Value)
			}
		}
	}
	return out
}

var yamlPosition = regexp.MustCompile(`(?:line |L)(\d+)(?:\.C(\d+))?`)

func syntaxError(file string, err error) error {
	e := &Error{File: file, Err: err}
	var le *yaml.LoadError
	if errors.As(err, &le) {
		e.Line, e.Column = le.Mark.Line, le.Mark.Column
		e.Err = fmt.Errorf("invalid YAML: %s", le.Message)
		if le.ContextMsg != "" {
			e.Err = fmt.Errorf("invalid YAML: %s (%s at line %d)", le.Message, le.ContextMsg, le.ContextMark.Line)
		}
		return e
	}
	if m := yamlPosition.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, _ = strconv.Atoi(m[2])
	}
	e.Err = fmt.Errorf("invalid YAML: %w", err)
	return e
}

// find returns the file and position of the longest prefix of path found
// in the files, preferring the last file on a tie (it overrides the others).
func (ss sources) find(path []string) (file string, line, column, depth int) {
	for i := len(ss) - 1; i >= 0; i-- {
		for j := len(ss[i].roots) - 1; j >= 0; j-- {
			n, d := lookup(ss[i].roots[j], path)
			if n != nil && d > depth {
				file, line, column, depth = ss[i].file, n.Line, n.Column, d
			}
		}
	}
	return file, line, column, depth
}

// lookup walks path down from node: mapping keys by name, sequence items
// by index. It returns the key node (or item) of the deepest step found.
func lookup(node *yaml.Node, path []string) (*yaml.Node, int) {
	var found *yaml.Node
	depth := 0
	for _, step := range path {
		if node == nil {
			break
		}
		for node.Kind == yaml.AliasNode && node.Alias != nil {
			node = node.Alias
		}
		var next, at *yaml.Node
		switch node.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == step {
					at, next = node.Content[i], node.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if n, err := strconv.Atoi(step); err == nil && n >= 0 && n < len(node.Content) {
				at, next = node.Content[n], node.Content[n]
			} else {
				// a list given as a sequence of KEY=VALUE or NAME strings
				for _, item := range node.Content {
					k, _, _ := strings.Cut(item.Value, "=")
					if item.Kind == yaml.ScalarNode && (item.Value == step || k == step) {
						at, next = item, item
					}
				}
			}
		}
		if at == nil {
			break
		}
		found, node = at, next
		depth++
	}
	return found, depth
}

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

// locateIn is locate, and when the message names no key path (compose-go's
// port and volume parsers do not), it finds the short-syntax entry of the
// files that fails to parse with the same message.
func (ss sources) locateIn(err error, env types.Mapping) error {
	located := ss.locate(err)
	var e *Error
	if !errors.As(located, &e) || e.Service != "" || e.Key != "" {
		return located
	}
	path, file, line, col := ss.pinpoint(err.Error(), env)
	if path == nil {
		if m := reEnvFile.FindStringSubmatch(err.Error()); m != nil {
			path, file, line, col = ss.findListEntry("env_file", filepath.Base(m[1]))
		}
	}
	if path != nil {
		e.setPath(path)
		e.File, e.Line, e.Column = file, line, col
	}
	return located
}

// shortSyntax are the parsers compose-go applies to short-syntax list
// entries, whose errors do not say which entry failed.
var shortSyntax = []struct {
	key   string
	parse func(string) error
}{
	{"ports", func(v string) error {
		_, err := types.ParsePortConfig(v)
		return err
	}},
	{"volumes", func(v string) error {
		_, err := format.ParseVolume(v)
		return err
	}},
}

func (ss sources) pinpoint(msg string, env types.Mapping) (path []string, file string, line, col int) {
	for i := len(ss) - 1; i >= 0; i-- {
		for _, root := range ss[i].roots {
			servicesNode := valueOf(root, "services")
			if servicesNode == nil || servicesNode.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(servicesNode.Content); j += 2 {
				name, svc := servicesNode.Content[j].Value, servicesNode.Content[j+1]
				for _, syntax := range shortSyntax {
					key, parse := syntax.key, syntax.parse
					list := valueOf(svc, key)
					if list == nil || list.Kind != yaml.SequenceNode {
						continue
					}
					for k, item := range list.Content {
						if item.Kind != yaml.ScalarNode {
							continue
						}
						v := item.Value
						if strings.Contains(v, "$") {
							var err error
							if v, err = template.Substitute(v, env.Resolve); err != nil {
								continue
							}
						}
						if err := parse(v); err != nil && strings.HasSuffix(msg, err.Error()) {
							return []string{"services", name, key, strconv.Itoa(k)}, ss[i].file, item.Line, item.Column
						}
					}
				}
			}
		}
	}
	return nil, "", 0, 0
}

// findListEntry finds the service whose list key (env_file, ...) has an
// entry naming a file called base.
func (ss sources) findListEntry(key, base string) (path []string, file string, line, col int) {
	for i := len(ss) - 1; i >= 0; i-- {
		for _, root := range ss[i].roots {
			services := valueOf(root, "services")
			if services == nil || services.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(services.Content); j += 2 {
				list := valueOf(services.Content[j+1], key)
				if list == nil {
					continue
				}
				items := list.Content
				if list.Kind == yaml.ScalarNode {
					items = []*yaml.Node{list}
				}
				for k, item := range items {
					v := item.Value
					if item.Kind == yaml.MappingNode {
						if p := valueOf(item, "path"); p != nil {
							v = p.Value
						}
					}
					if filepath.Base(v) == base {
						return []string{"services", services.Content[j].Value, key, strconv.Itoa(k)}, ss[i].file, item.Line, item.Column
					}
				}
			}
		}
	}
	return nil, "", 0, 0
}

// valueOf is the value of key in a mapping node, or nil.
func valueOf(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	var v *yaml.Node
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			v = node.Content[i+1]
		}
	}
	return v
}
