package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is how docker spells Docker Hub in normalised references;
// go-containerregistry spells it index.docker.io.
const dockerHub = "docker.io"

// Reference is an image reference in the normalised form docker uses:
// registry/repository plus a tag or a digest
// ("docker.io/library/busybox:latest", "localhost:5000/app@sha256:...").
type Reference struct {
	Registry   string // "docker.io", "localhost:5000"
	Repository string // "library/busybox"
	Tag        string // "latest"; empty when Digest is set
	Digest     string // "sha256:..."; empty for a tag
}

// ParseReference normalises a reference as docker does, with docker's own
// grammar (distribution/reference): "busybox" is
// docker.io/library/busybox:latest. An unparsable reference is an
// invalid-argument error.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, errdefs.ErrInvalidArgument.WithMessage("invalid reference format: empty")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format %q: %v", s, err))
	}
	named = reference.TagNameOnly(named)
	r := Reference{Registry: reference.Domain(named), Repository: reference.Path(named)}
	if r.Registry == name.DefaultRegistry {
		r.Registry = dockerHub
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	return r, nil
}

// NormalizeReference returns the normalised string of s.
func NormalizeReference(s string) (string, error) {
	r, err := ParseReference(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// Name is registry/repository, without tag or digest.
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// String is the normalised reference.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.Tag
}

// FamiliarName is the name as docker shows it: without "docker.io/" and
// "library/" for Docker Hub images ("busybox", "user/app").
func (r Reference) FamiliarName() string {
	if r.Registry != dockerHub {
		return r.Name()
	}
	return strings.TrimPrefix(r.Repository, "library/")
}

// Familiar is the reference as docker shows it ("busybox:latest").
func (r Reference) Familiar() string {
	if r.Digest != "" {
		return r.FamiliarName() + "@" + r.Digest
	}
	return r.FamiliarName() + ":" + r.Tag
}

// Familiar shortens a normalised reference for display; a string that does
// not parse comes back unchanged.
func Familiar(s string) string {
	r, err := ParseReference(s)
	if err != nil {
		return s
	}
	return r.Familiar()
}

// nameRef is the go-containerregistry reference of r, for the registry client.
func (r Reference) nameRef(insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.String(), opts...)
}

// RegistryHost is the host[:port] the registry client connects to, with
// Docker Hub's real host.
func (r Reference) RegistryHost() string {
	if r.Registry == dockerHub {
		return name.DefaultRegistry
	}
	return r.Registry
}

var hexPrefix = regexp.MustCompile(`^(sha256:)?[a-f0-9]{1,64}$`)

// looksLikeID reports whether s can be an image ID or a prefix of one.
func looksLikeID(s string) bool { return hexPrefix.MatchString(s) }
