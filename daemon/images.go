package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/image"
)

// daemonFile is ROOT/daemon.json, the daemon's optional settings, in the
// spirit of docker's /etc/docker/daemon.json.
type daemonFile struct {
	// InsecureRegistries may be reached over plain HTTP (loopback ones
	// always may).
	InsecureRegistries []string `json:"insecure-registries"`
	// MaxConcurrentDownloads bounds parallel layer downloads per pull.
	MaxConcurrentDownloads int `json:"max-concurrent-downloads"`
}

// imageOptions reads the image store's settings from ROOT/daemon.json.
func (d *Daemon) imageOptions() (image.Options, error) {
	var settings daemonFile
	b, err := os.ReadFile(filepath.Join(d.cfg.Root, "daemon.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return image.Options{}, fmt.Errorf("daemon settings: %w", err)
	default:
		if err := json.Unmarshal(b, &settings); err != nil {
			return image.Options{}, fmt.Errorf("daemon settings %s: %w", filepath.Join(d.cfg.Root, "daemon.json"), err)
		}
	}
	return image.Options{
		InsecureRegistries:     settings.InsecureRegistries,
		MaxConcurrentDownloads: settings.MaxConcurrentDownloads,
	}, nil
}

// imageRoutes serves the image endpoints.
func (d *Daemon) imageRoutes(mux *http.ServeMux) {
	api.RegisterImageRoutes(mux, d.engine.Images)
}
