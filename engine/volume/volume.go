// Package volume keeps named volumes: directories under the state root with
// a little metadata, as docker's local driver keeps them.
//
// A volume is a name, labels and a directory (ROOT/volumes/NAME/_data) that
// containers mount. The local driver's bind form (driver_opts type: none,
// o: bind, device: PATH) makes the volume stand for a host directory
// instead. Which containers use a volume is the container engine's
// knowledge, not this package's: Remove and Prune take it as an argument.
package volume

import (
	"regexp"
	"time"
)

// Volume is a named volume as `berth volume inspect` shows it.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	// Anonymous volumes are made for a container (an image's VOLUME, a
	// Compose volume without a source) and named by a random id.
	Anonymous bool `json:"Anonymous,omitempty"`
}

// Source is the host path a container mounts for v: the bind device of a
// bind-style volume, otherwise its data directory.
func (v Volume) Source() string {
	if v.Options["o"] == "bind" && v.Options["device"] != "" {
		return v.Options["device"]
	}
	return v.Mountpoint
}

// CreateOptions describe a new volume.
type CreateOptions struct {
	Name      string // empty: an anonymous volume with a random name
	Driver    string // "" or "local"
	Labels    map[string]string
	Options   map[string]string // driver_opts
	Anonymous bool
}

// validName is docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
