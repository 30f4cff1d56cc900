// Package image is berth's image store: where every container's file system
// comes from.
//
// A Store keeps images under ROOT/image in OCI image-layout form:
//
//	ROOT/image/oci-layout          the layout marker
//	ROOT/image/index.json          an OCI index of every image (derived, for other tools)
//	ROOT/image/images.json         berth's index: image ID -> manifest, names, repo digests
//	ROOT/image/blobs/sha256/HEX    content, by digest; verified on write and on read
//	ROOT/image/snapshots/HEX/fs    one layer unpacked in overlayfs form, HEX its diff ID
//	ROOT/image/leases/HOLDER       the images a container (or a build) holds
//	ROOT/image/tmp/                staging; emptied when the store opens
//
// Vocabulary, as docker has it: an image's ID is the digest of its config
// blob; a reference ("busybox", "localhost:5000/app:1") names an image and
// is stored normalised ("docker.io/library/busybox:latest"); a layer is a
// tar blob (gzip, zstd or plain) whose uncompressed digest is its diff ID.
//
// Every layer is unpacked once, when it enters the store, into a snapshot
// directory keyed by its diff ID: a snapshot holds only that layer's
// changes (deletions as overlayfs whiteouts), so its content does not
// depend on the layers below it and every image that has the layer shares
// the directory. A container stacks its image's snapshots as overlayfs
// lower directories (Snapshots returns them, topmost first).
//
// Every write is atomic (temporary file or directory, fsync, rename), and
// an operation that fails (a corrupt tarball, a digest mismatch, a full
// disk) removes what it added, so the store is left as it was.
//
// Images in use are protected by leases: rm and prune never delete a
// leased image, nor any content it needs. Lease(holder, image) writes the
// lease to disk, so that it outlives the daemon (the build cache's);
// LeaseInMemory does not, for a holder that leases again whenever the
// store is opened: the container engine leases each container's image
// when it creates the container and again from its records when it
// starts, and calls Release(holder) when it removes the container.
//
// Typical use by the container engine:
//
//	id, err := store.LeaseInMemory(ctx, containerID, "busybox")
//	lower, err := store.Snapshots(ctx, id) // overlayfs lowerdir=lower[0]:lower[1]:...
//	config, err := store.ConfigOf(ctx, id) // ... config.Config.Env, Entrypoint, Cmd ...
//	store.Release(ctx, containerID) // when the container is removed
package image

import (
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is one image of the store, resolved: what a container is made from.
type Image struct {
	// ID is the digest of the config blob ("sha256:..."), as docker shows it.
	ID string `json:"Id"`
	// RepoTags are the normalised references that name the image, sorted.
	RepoTags []string `json:"RepoTags"`
	// RepoDigests are name@digest references of the image in registries it
	// was pulled from or pushed to.
	RepoDigests []string `json:"RepoDigests"`
	// Manifest describes the image manifest blob in the store.
	Manifest v1.Descriptor `json:"Manifest"`
	// Config is the image's OCI config: Env, Entrypoint, Cmd, WorkingDir,
	// User, ExposedPorts, Volumes, Labels, StopSignal, Healthcheck...
	Config *v1.ConfigFile `json:"Config"`
	// Layers are the image's layers, bottom first.
	Layers []Layer `json:"Layers"`
	// Size is the sum of the layers' unpacked sizes.
	Size int64 `json:"Size"`
	// Created is the config's creation time.
	Created time.Time `json:"Created"`
	// LastTagTime is when the image last got a name in this store.
	LastTagTime time.Time `json:"LastTagTime"`
}

// Layer is one layer of an image.
type Layer struct {
	Digest       string `json:"Digest"`    // of the blob as stored (compressed or not)
	DiffID       string `json:"DiffID"`    // of the uncompressed tar
	MediaType    string `json:"MediaType"` // of the blob
	Size         int64  `json:"Size"`      // of the blob
	UnpackedSize int64  `json:"UnpackedSize"`
}

// Summary is one image in a listing (`berth image ls`).
type Summary struct {
	ID          string    `json:"Id"`
	RepoTags    []string  `json:"RepoTags"`
	RepoDigests []string  `json:"RepoDigests"`
	Created     time.Time `json:"Created"`
	Size        int64     `json:"Size"`
	// Containers is the number of holders (containers, builds) leasing the image.
	Containers int `json:"Containers"`
}

// ListOptions filter a listing. Empty options list every image.
type ListOptions struct {
	// Dangling, when set, keeps only images without (true) or with (false) names.
	Dangling *bool `json:"Dangling,omitempty"`
	// References keeps images with a name that matches one of these
	// patterns (path.Match syntax, against the familiar or the full name).
	References []string `json:"References,omitempty"`
	// HideHeldOnlyBy leaves out the untagged images whose only lease
	// holder is this one: the build cache's intermediate images, which
	// `image ls` shows only with -a, as docker hides intermediate images.
	HideHeldOnlyBy string `json:"HideHeldOnlyBy,omitempty"`
}

// HistoryEntry is one step of an image's history, newest first: a layer or
// a metadata-only step (an ENV, a CMD...).
type HistoryEntry struct {
	// ID is the image ID on the top entry and "<missing>" on the others, as
	// docker shows images it has no intermediate record of.
	ID         string    `json:"Id"`
	Created    time.Time `json:"Created"`
	CreatedBy  string    `json:"CreatedBy"`
	Size       int64     `json:"Size"`
	Comment    string    `json:"Comment"`
	Tags       []string  `json:"Tags"`
	EmptyLayer bool      `json:"EmptyLayer"`
}

// Details is what `berth image inspect` shows, shaped as docker's image
// inspect output.
type Details struct {
	ID            string        `json:"Id"`
	RepoTags      []string      `json:"RepoTags"`
	RepoDigests   []string      `json:"RepoDigests"`
	Parent        string        `json:"Parent"`
	Comment       string        `json:"Comment"`
	Created       string        `json:"Created"`
	DockerVersion string        `json:"DockerVersion"`
	Author        string        `json:"Author"`
	Config        v1.Config     `json:"Config"`
	Architecture  string        `json:"Architecture"`
	Variant       string        `json:"Variant,omitempty"`
	Os            string        `json:"Os"`
	Size          int64         `json:"Size"`
	RootFS        DetailsRoot   `json:"RootFS"`
	Metadata      DetailsMeta   `json:"Metadata"`
	Descriptor    v1.Descriptor `json:"Descriptor"`
}

// DetailsRoot is the RootFS section of Details.
type DetailsRoot struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// DetailsMeta is the Metadata section of Details.
type DetailsMeta struct {
	LastTagTime string `json:"LastTagTime,omitempty"`
}

// Deletion is one line of what rm and prune did, as docker reports it:
// either a name removed ("Untagged") or an image deleted ("Deleted").
type Deletion struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force removes a name even when containers use the image (the image
	// itself stays until they are gone) and an image ID with several names.
	Force bool `json:"Force,omitempty"`
	// NoPrune keeps the image's content when its last name goes.
	NoPrune bool `json:"NoPrune,omitempty"`
}

// PruneOptions tune Prune.
type PruneOptions struct {
	// All removes every image no container uses, not only untagged ones.
	All bool `json:"All,omitempty"`
}

// PruneReport is what Prune removed.
type PruneReport struct {
	ImagesDeleted  []Deletion `json:"ImagesDeleted"`
	SpaceReclaimed int64      `json:"SpaceReclaimed"`
}

// Event is a progress event of a long operation (pull, push, load): ID
// names what it is about (a layer's short digest, or the reference),
// Status what happens to it ("Downloading", "Pull complete"...), and
// Current/Total the bytes done so far when known.
type Event struct {
	ID      string `json:"id,omitempty"`
	Status  string `json:"status"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// Sink receives progress events. The store calls it from one goroutine at
// a time per operation. A nil Sink discards events.
type Sink func(Event)

// Platform selects one image of a multi-platform index.
type Platform = v1.Platform

// PullOptions tune Pull.
type PullOptions struct {
	// Platform to pull from a multi-platform image; default the host's.
	Platform *Platform `json:"Platform,omitempty"`
	// Auth are the credentials for the registry; nil uses the daemon
	// user's docker config (~/.docker/config.json, $DOCKER_CONFIG).
	Auth *authn.AuthConfig `json:"Auth,omitempty"`
	Sink Sink              `json:"-"`
}

// PushOptions tune Push.
type PushOptions struct {
	Auth *authn.AuthConfig `json:"Auth,omitempty"`
	Sink Sink              `json:"-"`
}

// PushResult is what Push sent.
type PushResult struct {
	Reference string `json:"Reference"`
	Digest    string `json:"Digest"`
	Size      int64  `json:"Size"`
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Reference names the new image; empty leaves it untagged.
	Reference string `json:"Reference,omitempty"`
	// Message is the history comment (`import -m`).
	Message string `json:"Message,omitempty"`
	// Config is the new image's run configuration (`import --change`).
	Config v1.Config `json:"Config"`
	// Platform of the new image; default the host's.
	Platform *Platform `json:"Platform,omitempty"`
}

// LoadOptions tune Load.
type LoadOptions struct {
	Platform *Platform `json:"Platform,omitempty"`
	Sink     Sink      `json:"-"`
}

// LoadedImage is one image a Load brought in: its name, if the archive
// gave one, and its ID.
type LoadedImage struct {
	Reference string `json:"Reference,omitempty"`
	ID        string `json:"Id"`
}

// Archive formats of Save.
const (
	// DockerArchive is what `docker save` writes: manifest.json with
	// uncompressed layers, plus an OCI index (docker 25 and later).
	DockerArchive = "docker-archive"
	// OCIArchive is an OCI image layout in a tar, as skopeo's oci-archive
	// transport writes it; blobs kept as stored.
	OCIArchive = "oci-archive"
)

// SaveOptions tune Save.
type SaveOptions struct {
	Format string `json:"Format,omitempty"` // DockerArchive (default) or OCIArchive
}

// NewLayer is a layer given to Create: an uncompressed tar, whiteouts in
// the .wh. form, read to its end.
type NewLayer struct {
	Tar io.Reader
}

// CreateOptions describe an image to Create: a base (or none) plus layers,
// a run configuration and history. The output is reproducible: the same
// options give the same digests.
type CreateOptions struct {
	// Base is the reference or ID of the base image; "" or "scratch" for none.
	Base string
	// Layers go on top of the base's, in order.
	Layers []NewLayer
	// Config is the new image's run configuration (it replaces the base's;
	// start from the base's Config to inherit).
	Config v1.Config
	// History entries for the new steps, appended to the base's; one per
	// layer (EmptyLayer false) and per metadata-only step (EmptyLayer true).
	History []v1.History
	// Created is the image's creation time; zero keeps the output free of
	// wall-clock time.
	Created time.Time
	// Author, Architecture, OS and Variant of the new image; empty takes
	// the base's, else the host's.
	Author, Architecture, OS, Variant string
	// Tags name the new image.
	Tags []string
	// Lease, when set, leases the new image to this holder before anyone
	// can prune it (a build holds its intermediate images this way).
	Lease string
}

// Options configure a Store.
type Options struct {
	// InsecureRegistries may be reached over plain HTTP (host or host:port,
	// or a CIDR). Loopback registries always may, as with docker.
	InsecureRegistries []string
	// MaxConcurrentDownloads bounds parallel layer downloads per pull (default 3).
	MaxConcurrentDownloads int
}
