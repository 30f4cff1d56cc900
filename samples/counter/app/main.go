// Command app is the program of the counter sample, in three roles:
//
//	app kv      a tiny key-value store over HTTP, its counts in /data
//	app web     counts each visit in the store (reached by its link alias)
//	            and says which replica answered
//	app front   the published entry point: forwards each request to "web",
//	            resolved afresh every time, so berth's DNS round robin
//	            spreads requests over the replicas
//	app check URL   a healthcheck: exits 0 when URL answers 200
//
// It is built static (CGO_ENABLED=0) and runs FROM scratch.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: app kv|web|front|check URL")
	}
	if os.Args[1] == "check" && len(os.Args) == 3 {
		os.Exit(check(os.Args[2]))
	}
	addr := ":" + env("PORT", "80")
	var h http.Handler
	switch os.Args[1] {
	case "kv":
		h = newStore(env("DATA", "/data"))
	case "web":
		h = http.HandlerFunc(web)
	case "front":
		h = http.HandlerFunc(front)
	default:
		log.Fatalf("unknown role %q", os.Args[1])
	}
	log.Printf("%s listening on %s", os.Args[1], addr)
	log.Fatal(http.ListenAndServe(addr, h))
}

// check is the healthcheck: the image is FROM scratch, with no shell or
// wget to run one.
func check(url string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

func env(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// store keeps counters in a JSON file so they survive the container.
type store struct {
	mu     sync.Mutex
	path   string
	counts map[string]int
}

func newStore(dir string) *store {
	s := &store{path: filepath.Join(dir, "counts.json"), counts: map[string]int{}}
	if b, err := os.ReadFile(s.path); err == nil {
		_ = json.Unmarshal(b, &s.counts)
	}
	return s
}

// ServeHTTP: POST /incr/KEY adds one and answers the new count; GET
// /get/KEY answers the count.
func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := filepath.Base(r.URL.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && filepath.Dir(r.URL.Path) == "/incr":
		s.counts[key]++
		b, _ := json.Marshal(s.counts)
		tmp := s.path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err == nil {
			_ = os.Rename(tmp, s.path)
		}
	case r.Method == http.MethodGet && filepath.Dir(r.URL.Path) == "/get":
	default:
		http.NotFound(w, r)
		return
	}
	fmt.Fprintln(w, s.counts[key])
}

var client = &http.Client{Timeout: 5 * time.Second}

// web counts the visit in the store and names the replica that answered.
func web(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		fmt.Fprintln(w, "ok")
		return
	}
	resp, err := client.Post("http://"+env("STORE", "store")+"/incr/visits", "text/plain", nil)
	if err != nil {
		http.Error(w, "store unreachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.Atoi(string(trim(b)))
	host, _ := os.Hostname()
	fmt.Fprintf(w, "visit %d, answered by %s\n", n, host)
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// front forwards to one of web's replicas, looked up now: each lookup
// gets the replicas' addresses in a new order.
func front(w http.ResponseWriter, r *http.Request) {
	ips, err := net.DefaultResolver.LookupHost(r.Context(), env("BACKEND", "web"))
	if err != nil || len(ips) == 0 {
		http.Error(w, fmt.Sprintf("no backend: %v", err), http.StatusBadGateway)
		return
	}
	resp, err := client.Get("http://" + net.JoinHostPort(ips[0], env("BACKEND_PORT", "80")) + r.URL.Path)
	if err != nil {
		http.Error(w, "backend: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
