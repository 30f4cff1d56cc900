package network

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/engine/network/ipam"
	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/flock"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/berth-dev/berth/internal/rootid"
)

// Options configure a Manager.
type Options struct {
	// Root is the state root whose identity names the host objects (links,
	// the nftables table); default: the parent of the state directory.
	Root string
	// Pools are where networks without a subnet draw theirs from; default:
	// ipam.DefaultPools().
	Pools []ipam.Pool
}

// Manager keeps the networks and sandboxes of one state root. One process
// at a time opens a state directory (an flock on DIR/lock says which).
type Manager struct {
	dir    string
	root   string
	prefix string // rootid.LinkPrefix(root)
	table  string // rootid.NFTable(root)
	pools  []ipam.Pool
	lock   *os.File

	// failpoint, when set (by tests), is called at the named steps of
	// creating things, between a kernel change and its record: a test makes
	// it kill the process there to prove Open repairs the result.
	failpoint func(step string)

	mu        sync.Mutex
	networks  map[string]*netState // by ID; guarded by mu
	sandboxes map[string]*sbState  // by ID; guarded by mu
	held      map[string]io.Closer // host sockets reserving published ports, by portKey; guarded by mu
	repairs   []string             // what Open repaired; guarded by mu
}

type netState struct {
	Network
	space    *ipam.Space
	inflight int // attachments under way, not yet recorded
}

type sbState struct {
	// op serialises the operations on one sandbox (attach, detach,
	// delete), so two containers' attachments run in parallel but one
	// sandbox's never interleave. Taken before Manager.mu.
	op      sync.Mutex
	rec     Sandbox // guarded by Manager.mu
	deleted bool    // guarded by Manager.mu
}

// Open returns the manager of the state directory dir (ROOT/network),
// creating it if needed, after comparing its records with the kernel and
// repairing the differences (Repairs lists them).
func Open(dir string, opts Options) (*Manager, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root := opts.Root
	if root == "" {
		root = filepath.Dir(dir)
	}
	m := &Manager{
		dir: dir, root: root,
		prefix: rootid.LinkPrefix(root), table: rootid.NFTable(root),
		pools:    opts.Pools,
		networks: map[string]*netState{}, sandboxes: map[string]*sbState{}, held: map[string]io.Closer{},
	}
	if len(m.pools) == 0 {
		m.pools = ipam.DefaultPools()
	}
	for _, d := range []string{dir, m.networksDir(), m.sandboxesDir(), m.netnsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network state: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	if err := flock.Exclusive(lock, flock.ForkWait); err != nil {
		lock.Close()
		if errors.Is(err, flock.ErrHeld) {
			return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("network state %s is in use by another process", dir))
		}
		return nil, fmt.Errorf("network state: lock: %w", err)
	}
	m.lock = lock
	if err := m.restore(); err != nil {
		m.Close()
		return nil, fmt.Errorf("restore networks of %s: %w", dir, err)
	}
	return m, nil
}

// Close releases the host ports held for published ports and the state
// directory. Networks, sandboxes and rules stay: containers keep running
// without berth's daemon, and the next Open takes them over.
func (m *Manager) Close() error {
	m.mu.Lock()
	for k, c := range m.held {
		c.Close()
		delete(m.held, k)
	}
	m.mu.Unlock()
	if m.lock != nil {
		err := m.lock.Close()
		m.lock = nil
		return err
	}
	return nil
}

// Repairs lists what Open found out of step between the records and the
// kernel and what it did about each, one sentence each, for the daemon's log.
func (m *Manager) Repairs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.repairs)
}

func (m *Manager) repaired(format string, args ...any) {
	m.repairs = append(m.repairs, fmt.Sprintf(format, args...))
}

func (m *Manager) fail(step string) {
	if m.failpoint != nil {
		m.failpoint(step)
	}
}

func (m *Manager) networksDir() string  { return filepath.Join(m.dir, "networks") }
func (m *Manager) sandboxesDir() string { return filepath.Join(m.dir, "sandboxes") }
func (m *Manager) netnsDir() string     { return filepath.Join(m.dir, "netns") }

func (m *Manager) networkPath(id string) string { return filepath.Join(m.networksDir(), id+".json") }
func (m *Manager) sandboxPath(id string) string { return filepath.Join(m.sandboxesDir(), id+".json") }
func (m *Manager) nsPath(id string) string      { return filepath.Join(m.netnsDir(), id) }

func (m *Manager) saveNetwork(n *Network) error {
	return atomicfile.WriteJSON(m.networkPath(n.ID), n, 0o600)
}

func (m *Manager) saveSandbox(sb *Sandbox) error {
	return atomicfile.WriteJSON(m.sandboxPath(sb.ID), sb, 0o600)
}

func removeRecord(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// loadRecords reads every record of kind T in dir, removing the temporary
// files a crash in the middle of a write left behind.
func loadRecords[T any](dir string) ([]T, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		var v T
		if err := atomicfile.ReadJSON(filepath.Join(dir, name), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// newID returns a random id of 64 hex digits, as Docker's.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// linkName is the host name of an object of this state root: the root's
// link prefix (7 characters), a kind ("br", "ve") and 6 digits of its id:
// 15 characters, the most Linux allows.
func (m *Manager) linkName(kind, id string) string { return m.prefix + kind + id[:6] }

// findNetwork returns the network called nameOrID: its name, its full id or
// an unambiguous prefix of the id; m.mu is held.
func (m *Manager) findNetwork(nameOrID string) (*netState, error) {
	if n, ok := m.networks[nameOrID]; ok {
		return n, nil
	}
	for _, n := range m.networks {
		if n.Name == nameOrID {
			return n, nil
		}
	}
	var found *netState
	if len(nameOrID) >= 3 {
		for id, n := range m.networks {
			if strings.HasPrefix(id, nameOrID) {
				if found != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network id prefix %q is ambiguous", nameOrID))
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no such network: " + nameOrID)
	}
	return found, nil
}

// Get returns the network called nameOrID (a name, an id or an id prefix):
// how the caller finds an external network.
func (m *Manager) Get(nameOrID string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.findNetwork(nameOrID)
	if err != nil {
		return Network{}, err
	}
	return n.copy(), nil
}

// List returns the networks whose labels include sel (a label with an
// empty value matches any value), by name.
func (m *Manager) List(sel map[string]string) []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.networks {
		if labels.Match(n.Labels, sel) {
			out = append(out, n.copy())
		}
	}
	slices.SortFunc(out, func(a, b Network) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (n *netState) copy() Network {
	c := n.Network
	c.Labels = orEmpty(maps.Clone(c.Labels))
	c.Options = orEmpty(maps.Clone(c.Options))
	c.AuxAddresses = maps.Clone(c.AuxAddresses)
	return c
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Resync rewrites the state root's nftables rules from the records,
// re-inserts its accept rules in foreign chains whose policy is drop and
// turns IPv4 forwarding back on if it was turned off.
// The daemon calls it now and then: a firewall (Docker's, say) started after
// berth's networks were made has cut their forwarding until then.
func (m *Manager) Resync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.networks {
		if !n.Internal {
			// Someone may have turned forwarding off since.
			if err := enableForwarding(); err != nil {
				return err
			}
			break
		}
	}
	return m.syncFirewall()
}
