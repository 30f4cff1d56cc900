package imagetest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

// Registry auth modes of Registry.
const (
	AuthNone  = ""
	AuthBasic = "basic"
	AuthToken = "token"
)

const (
	User     = "berth"
	Password = "s3cret-pass"
)

// Registry is Debian's docker-registry serving on loopback behind a
// counting reverse proxy: Host is the proxy's address, the one tests use.
type Registry struct {
	Host    string
	Storage string

	mu       sync.Mutex
	blobGets map[string]int // digest -> GETs of the blob
	// hold, when set, makes blob GETs wait until it is closed.
	hold chan struct{}
	// onManifest is called on every manifest request, before it is served.
	onManifest func()
}

// StartRegistry starts a registry with the given auth mode.
func StartRegistry(t testing.TB, auth string) *Registry {
	t.Helper()
	bin := testutil.RequireCommand(t, "docker-registry")[0]
	dir := t.TempDir()
	reg := &Registry{Storage: filepath.Join(dir, "storage"), blobGets: map[string]int{}}
	// The proxy comes first: in token mode it also serves the token
	// endpoint, since the registry client only trusts a token realm on a
	// loopback address when it is the registry's own host:port.
	var proxy http.Handler
	var tokens *tokenServer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" && tokens != nil {
			tokens.serve(w, r)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			reg.mu.Lock()
			on := reg.onManifest
			reg.mu.Unlock()
			if on != nil {
				on()
			}
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			digest := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			reg.mu.Lock()
			reg.blobGets[digest]++
			hold := reg.hold
			reg.mu.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-time.After(30 * time.Second):
				}
			}
		}
		reg.mu.Lock()
		p := proxy
		reg.mu.Unlock()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg.Host = strings.TrimPrefix(srv.URL, "http://")

	port := freePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
  secret: berth-test-secret
`, reg.Storage, port)
	switch auth {
	case AuthBasic:
		hash, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		os.WriteFile(htpasswd, []byte(User+":"+string(hash)+"\n"), 0o600)
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
	case AuthToken:
		tokens = newTokenServer(t, dir)
		cfg += fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			srv.URL, tokenService, tokenIssuer, tokens.certFile)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("registry log:\n%s", b)
		}
	})
	backend := fmt.Sprintf("127.0.0.1:%d", port)
	testutil.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + backend + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	target, _ := url.Parse("http://" + backend)
	reg.mu.Lock()
	proxy = httputil.NewSingleHostReverseProxy(target)
	reg.mu.Unlock()
	return reg
}

// HoldBlobsUntilManifests makes blob downloads wait until the registry
// has been asked for a manifest n times: n pulls started at once then all
// want their layers at the same moment.
func (r *Registry) HoldBlobsUntilManifests(n int) {
	hold := make(chan struct{})
	var once sync.Once
	manifests := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = hold
	r.onManifest = func() {
		r.mu.Lock()
		manifests++
		seen := manifests
		r.mu.Unlock()
		if seen >= n {
			once.Do(func() { close(hold) })
		}
	}
}

// BlobGets is how many times the blob digest was downloaded.
func (r *Registry) BlobGets(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest]
}

// BlobData is where the registry keeps a blob's content.
func (r *Registry) BlobData(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.Storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-issuer"
)

// tokenServer issues the JWTs a registry in token mode verifies, signed
// with a key whose self-signed certificate is the registry's root bundle
// and sent in the token's x5c header, as real token servers do.
type tokenServer struct {
	certFile string
	key      *rsa.PrivateKey
	certDER  []byte
}

func newTokenServer(t testing.TB, dir string) *tokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certFile: filepath.Join(dir, "token-cert.pem"), key: key, certDER: der}
	os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != User || pass != Password {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) < 3 {
			continue
		}
		grants = append(grants, access{Type: parts[0], Name: strings.Join(parts[1:len(parts)-1], ":"), Actions: strings.Split(parts[len(parts)-1], ",")})
	}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": user, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Minute).Unix(),
		"jti": fmt.Sprintf("%d", now.UnixNano()), "access": grants,
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.key, crypto.SHA256, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}
