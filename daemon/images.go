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

// openImages opens the image store of the daemon's root.
func (d *Daemon) openImages() error {
	var settings daemonFile
	b, err := os.ReadFile(filepath.Join(d.cfg.Root, "daemon.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("daemon settings: %w", err)
	default:
		if err := json.Unmarshal(b, &settings); err != nil {
			return fmt.Errorf("daemon settings %s: %w", filepath.Join(d.cfg.Root, "daemon.json"), err)
		}
	}
	store, err := image.Open(d.cfg.Root, image.Options{
		InsecureRegistries:     settings.InsecureRegistries,
		MaxConcurrentDownloads: settings.MaxConcurrentDownloads,
	})
	if err != nil {
		return err
	}
	d.images = store
	return nil
}

// imageRoutes serves the image endpoints.
func (d *Daemon) imageRoutes(mux *http.ServeMux) {
	api.RegisterImageRoutes(mux, d.images)
}
