package manifest

import (
	"fmt"
	"io"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/docker/cli/pkg/kvfile"
)

// init registers the env_file format "raw" (`format: raw`): KEY=VALUE
// lines taken as written, without quotes or interpolation, as `docker run
// --env-file` reads them. docker compose registers it the same way
// (cmd/compose/compose.go); compose-go keeps its formats in a registry of
// its own, which this fills once, before any load can read it.
func init() {
	dotenv.RegisterFormat("raw", rawEnvFile)
}

func rawEnvFile(r io.Reader, filename string, vars map[string]string, lookup func(string) (string, bool)) error {
	lines, err := kvfile.ParseFromReader(r, lookup)
	if err != nil {
		return fmt.Errorf("failed to parse env_file %s: %w", filename, err)
	}
	for _, line := range lines {
		key, value, _ := strings.Cut(line, "=")
		vars[key] = value
	}
	return nil
}
