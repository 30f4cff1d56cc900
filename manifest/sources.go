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
	"go.yaml.in/yaml/v4"
)

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
