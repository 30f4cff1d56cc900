package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as a Compose file (read from stdin, as
// `-f -` does) through the whole loading path: compose-go's loader, the
// conversion into berth's model, the config hash, rendering and the JSON
// that crosses the socket. Any input must give a project or an error,
// never a panic or a hang.
//
// The seeds are the testdata Compose files, valid and invalid. Crashers
// that `go test -fuzz` finds land in testdata/fuzz/FuzzLoad and run as
// regression cases with the ordinary tests.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{
		"../testdata/manifest/config/*/*.yaml",
		"../testdata/manifest/invalid/*.yaml",
	} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// The loader reads the files a Compose file names (env_file,
		// extends, include, label_file). Device and kernel files would make
		// it read forever or block, as they would docker compose; they are
		// not what this target is about.
		for _, special := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(data, []byte(special)) {
				return
			}
		}
		p, err := Load(context.Background(), Options{
			Files:   []string{"-"},
			Stdin:   bytes.NewReader(data),
			WorkDir: dir,
			Environ: []string{"TAG=1", "EMPTY="},
		})
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Err == nil {
				t.Fatalf("*Error without a cause: %#v", e)
			}
			_ = err.Error()
			return
		}
		for name, s := range p.Services {
			if s.ConfigHash != ConfigHash(s) {
				t.Fatalf("service %s: stored hash is not ConfigHash", name)
			}
		}
		for _, format := range []string{FormatYAML, FormatJSON} {
			if _, err := p.Render(format); err != nil && !strings.Contains(err.Error(), "render") {
				t.Fatalf("render %s: %v", format, err)
			}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal project: %v", err)
		}
		var back Project
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal project: %v", err)
		}
	})
}
