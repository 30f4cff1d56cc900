package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DockerHubServer is the key docker uses for Docker Hub in config.json.
const DockerHubServer = "https://index.docker.io/v1/"

// AllowsPlainHTTP reports whether berth may talk plain HTTP to the
// registry host (host or host:port): loopback registries always may, as
// with docker; others only when listed in insecure (host, host:port, or a
// CIDR holding the host's address).
func AllowsPlainHTTP(host string, insecure []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	ip := net.ParseIP(h)
	if h == "localhost" || (ip != nil && ip.IsLoopback()) {
		return true
	}
	for _, e := range insecure {
		e = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://"), "/")
		if e == host || e == h {
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil && ip != nil && cidr.Contains(ip) {
			return true
		}
	}
	return false
}

// httpPolicy refuses plain HTTP to registries (and token servers) that are
// not allowed it, whatever the registry client would try.
type httpPolicy struct {
	base     http.RoundTripper
	insecure []string
}

func (p *httpPolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !AllowsPlainHTTP(req.URL.Host, p.insecure) {
		return nil, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("refusing plain HTTP to %s: it is not a loopback registry nor marked insecure (insecure-registries)", req.URL.Host))
	}
	return p.base.RoundTrip(req)
}

// transport is the HTTP transport of every registry call.
func (s *Store) transport() http.RoundTripper {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	return &httpPolicy{base: base, insecure: s.opts.InsecureRegistries}
}

// remoteOptions are the registry client's options for one operation.
func (s *Store) remoteOptions(ctx context.Context, auth *authn.AuthConfig, platform *v1.Platform) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(s.transport()),
		remote.WithUserAgent("berth"),
		remote.WithJobs(s.opts.MaxConcurrentDownloads),
	}
	if auth != nil {
		opts = append(opts, remote.WithAuth(authn.FromConfig(*auth)))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if platform != nil {
		opts = append(opts, remote.WithPlatform(*platform))
	}
	return opts
}

// nameRef is the registry client's reference for r, insecure when r's
// registry is marked so (loopback ones the client tries over HTTP anyway).
func (s *Store) nameRef(r Reference) (name.Reference, error) {
	insecure := AllowsPlainHTTP(r.RegistryHost(), s.opts.InsecureRegistries)
	ref, err := r.nameRef(insecure)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format %q: %v", r, err))
	}
	return ref, nil
}

// ParsePlatform parses "os/arch[/variant]" ("linux/amd64", "linux/arm64/v8").
func ParsePlatform(s string) (Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return Platform{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad platform %q: want os/arch[/variant]", s))
	}
	return *p, nil
}

// hostPlatform is the platform pulled when none is asked for.
func hostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// registryError gives a registry client error its class and a message a
// user understands, prefixed with what was being done.
func registryError(op, ref string, err error) error {
	if err == nil {
		return nil
	}
	return classifyRegistry(fmt.Errorf("%s %s: %w", op, ref, err))
}

// classifyRegistry gives a registry client error its errdefs class: from
// the HTTP status and the distribution API's error codes, or unavailable
// for a network failure. Errors that have a class keep it.
func classifyRegistry(err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	var class error = errdefs.ErrUnknown
	hint := ""
	switch {
	case errors.As(err, &te):
		switch {
		case te.StatusCode == http.StatusUnauthorized:
			class, hint = errdefs.ErrUnauthenticated, " (log in with `berth login`)"
		case te.StatusCode == http.StatusForbidden:
			class = errdefs.ErrPermissionDenied
		case te.StatusCode == http.StatusNotFound:
			class = errdefs.ErrNotFound
		case te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
			class = errdefs.ErrUnavailable
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				class = errdefs.ErrNotFound
			case transport.UnauthorizedErrorCode:
				class, hint = errdefs.ErrUnauthenticated, " (log in with `berth login`)"
			case transport.DeniedErrorCode:
				class = errdefs.ErrPermissionDenied
			}
		}
	case errdefs.IsPermissionDenied(err), errdefs.IsDataLoss(err), errdefs.IsCanceled(err), errdefs.IsDeadlineExceeded(err),
		errdefs.IsResourceExhausted(err), errdefs.IsInvalidArgument(err), errdefs.IsNotFound(err), errdefs.IsUnauthorized(err):
		return err
	default:
		var ue *url.Error
		var ne net.Error
		if errors.As(err, &ue) || errors.As(err, &ne) {
			class = errdefs.ErrUnavailable
		}
	}
	if hint != "" {
		err = fmt.Errorf("%w%s", err, hint)
	}
	return classed(class, err)
}

// ServerHost turns what a user gives `berth login` ("", "docker.io",
// "https://localhost:5000/v2/") into a registry host and the key docker
// stores its credentials under in config.json.
func ServerHost(server string) (host, configKey string) {
	s := strings.TrimSpace(server)
	if s == "" || s == DockerHubServer {
		return name.DefaultRegistry, DockerHubServer
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if s == dockerHub || s == name.DefaultRegistry || s == "registry-1.docker.io" {
		return name.DefaultRegistry, DockerHubServer
	}
	return s, s
}

// CheckLogin verifies credentials against a registry, as `docker login`
// does before storing them: it authenticates (through the registry's token
// server when it has one) and calls the registry's API root.
func (s *Store) CheckLogin(ctx context.Context, server string, auth authn.AuthConfig) error {
	host, _ := ServerHost(server)
	var opts []name.Option
	if AllowsPlainHTTP(host, s.opts.InsecureRegistries) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("login: bad registry %q: %v", server, err))
	}
	rt, err := transport.NewWithContext(ctx, reg, authn.FromConfig(auth), s.transport(), nil)
	if err != nil {
		return loginError(host, err)
	}
	client := &http.Client{Transport: rt}
	// Ping picked the scheme; try https first as the client does.
	var lastErr error
	for _, scheme := range []string{"https", "http"} {
		if scheme == "http" && !AllowsPlainHTTP(host, s.opts.InsecureRegistries) {
			break
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("login to %s: unauthorized: incorrect username or password", host))
		default:
			return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("login to %s: registry answered %s", host, resp.Status))
		}
	}
	return loginError(host, lastErr)
}

func loginError(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return classed(errdefs.ErrUnauthenticated, fmt.Errorf("login to %s: unauthorized: incorrect username or password: %w", host, err))
	}
	return registryError("login to", host, err)
}
