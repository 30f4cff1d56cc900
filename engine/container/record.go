package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Container is a container's record, as `berth container inspect` shows it.
type Container struct {
	ID      string    `json:"Id"`
	Name    string    `json:"Name"`
	Created time.Time `json:"Created"`
	Config  Config    `json:"Config"`
	// ImageID is the image the container was made from.
	ImageID string `json:"Image"`
	// Path and Args are the process the container runs: the image's
	// entrypoint and command overridden by the config's.
	Path  string   `json:"Path"`
	Args  []string `json:"Args"`
	State State    `json:"State"`
	// Volumes are the volumes created for this container's anonymous
	// mounts, by target: removed with the container when asked (rm -v).
	AnonymousVolumes map[string]string `json:"AnonymousVolumes,omitempty"`
	// Network is the container's network settings while it runs.
	Network NetworkSettings `json:"NetworkSettings"`
	// RestartCount is how often the restart policy started it again.
	RestartCount int    `json:"RestartCount"`
	LogPath      string `json:"LogPath"`
}

// State is the part of a record that changes as the container runs.
type State struct {
	Status     Status    `json:"Status"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	OOMKilled  bool      `json:"OOMKilled"`
	Error      string    `json:"Error,omitempty"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	Health     *Health   `json:"Health,omitempty"`
	// StoppedByUser is set by stop and kill so that the restart policy
	// (unless-stopped, on-failure) leaves the container alone.
	StoppedByUser bool `json:"StoppedByUser,omitempty"`
}

// Health is the container's healthcheck state.
type Health struct {
	Status        string        `json:"Status"` // starting, healthy, unhealthy
	FailingStreak int           `json:"FailingStreak"`
	Log           []HealthProbe `json:"Log,omitempty"`
}

// HealthProbe is the result of one healthcheck run.
type HealthProbe struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// NetworkSettings are the container's addresses while it runs.
type NetworkSettings struct {
	SandboxPath string              `json:"SandboxKey,omitempty"`
	Networks    map[string]Endpoint `json:"Networks,omitempty"`
	// Order is the networks in the order joined: the first one's gateway
	// is the container's nameserver.
	Order []string      `json:"NetworkOrder,omitempty"`
	Ports []PortBinding `json:"Ports,omitempty"` // as bound: HostPort filled in
	// Upstreams are the resolvers (Compose dns:) that berth's DNS forwards
	// this container's other queries to; none means the host's.
	Upstreams []netip.AddrPort `json:"Upstreams,omitempty"`
}

// Endpoint is the container on one network.
type Endpoint struct {
	NetworkID   string   `json:"NetworkID,omitempty"`
	IPAddress   string   `json:"IPAddress"`
	PrefixLen   int      `json:"IPPrefixLen"`
	Gateway     string   `json:"Gateway"`
	MacAddress  string   `json:"MacAddress"`
	Aliases     []string `json:"Aliases,omitempty"`
	DNSNames    []string `json:"DNSNames,omitempty"`
	Interface   string   `json:"Interface,omitempty"`
	EndpointKey string   `json:"EndpointID,omitempty"`
}

// newID returns a random 64-hex-digit container id.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// dir is where a container's files live.
func (m *Manager) dir(id string) string { return filepath.Join(m.root, "containers", id) }

func (m *Manager) recordPath(id string) string { return filepath.Join(m.dir(id), "container.json") }

func (m *Manager) exitPath(id string) string { return filepath.Join(m.dir(id), "exit.json") }

func (m *Manager) bundleDir(id string) string { return filepath.Join(m.dir(id), "bundle") }

func (m *Manager) rootfsDir(id string) string { return filepath.Join(m.dir(id), "bundle", "rootfs") }

// save writes a record atomically, as a run's changes (start, exit,
// health, restarts) are: not synced to disk. A crash of berth loses none
// of them (the page cache survives it); a power cut ends every container
// anyway, and whatever state it finds, restore reconciles it with the
// processes that do not run. Creating and renaming use saveDurable.
func (m *Manager) save(c *Container) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteVolatile(m.recordPath(c.ID), append(b, '\n'), 0o600)
}

// writeNew writes the record of a container being created, in place (in
// a directory made ahead the file exists: no inode to allocate), and
// returns the function that syncs it and its directory's entry. A crash
// half-way leaves a record that does not load: the directory of a create
// that did not finish, which restore removes.
//
// The create answers once the record is written and syncs it after (see
// Create): a sync takes a millisecond or more on a journaling file system,
// and its start has nothing to wait for. The container's start answers
// only once it is synced.
func (m *Manager) writeNew(c *Container, ahead bool) (sync func() error, err error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(m.recordPath(c.ID), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	dir := m.dir(c.ID)
	return func() error {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && !ahead {
			err = atomicfile.SyncDir(dir) // made ahead, it was synced with its files
		}
		if err == nil {
			err = atomicfile.SyncDir(filepath.Dir(dir))
		}
		return err
	}, nil
}

// saveDurable writes a record atomically and syncs it: a container that
// was created, or renamed, stays so across a power cut.
func (m *Manager) saveDurable(c *Container) error {
	return atomicfile.WriteJSON(m.recordPath(c.ID), c, 0o600)
}

// loadRecords reads every record under ROOT/containers. Directories
// without a record are the remains of a create that crashed; they are
// returned as broken for the caller to clean up.
func (m *Manager) loadRecords() (records []*Container, broken []string, err error) {
	entries, err := os.ReadDir(filepath.Join(m.root, "containers"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var c Container
		if err := atomicfile.ReadJSON(m.recordPath(e.Name()), &c); err != nil {
			broken = append(broken, e.Name())
			continue
		}
		if c.ID != e.Name() {
			broken = append(broken, e.Name())
			continue
		}
		records = append(records, &c)
	}
	return records, broken, nil
}

// nameInUse is the message docker gives, so scripts that match it work.
func nameInUse(name, id string) string {
	return fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name", name, id)
}
