package api

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/engine/container"
)

// RegisterArchiveRoutes serves `cp` (GET and PUT a tar of a path in a
// running container) and `export` (GET a tar of a container's root
// filesystem).
func RegisterArchiveRoutes(mux *http.ServeMux, m *container.Manager) {
	p := "/" + Version + "/containers/{id}/archive"
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		id, path := r.PathValue("id"), r.URL.Query().Get("path")
		writeTar(w, func(tw io.Writer) error { return m.CopyFrom(r.Context(), id, path, tw) })
	})
	mux.HandleFunc("PUT "+p, func(w http.ResponseWriter, r *http.Request) {
		answer(w, nil, m.CopyTo(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"), r.Body))
	})
	mux.HandleFunc("GET /"+Version+"/containers/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		writeTar(w, func(tw io.Writer) error { return m.Export(r.Context(), r.PathValue("id"), tw) })
	})
}

// writeTar answers with the tar that write makes. An error before its
// first byte is answered as an error; after it, the stream is cut.
func writeTar(w http.ResponseWriter, write func(io.Writer) error) {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	buf := make([]byte, 32<<10)
	n, err := io.ReadAtLeast(pr, buf, 1)
	if err != nil {
		pr.Close()
		WriteError(w, <-errc)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf[:n])
	_, _ = io.Copy(w, pr)
	<-errc
}

// Export returns a tar of the container's root filesystem; the caller
// closes it.
func (cc *ContainerClient) Export(ctx context.Context, ref string) (io.ReadCloser, error) {
	resp, err := cc.c.Do(ctx, http.MethodGet, containersPath(ref, "export"), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CopyFrom returns a tar of path in the container; the caller closes it.
func (cc *ContainerClient) CopyFrom(ctx context.Context, ref, path string) (io.ReadCloser, error) {
	resp, err := cc.c.Do(ctx, http.MethodGet, containersPath(ref, "archive")+"?path="+url.QueryEscape(path), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CopyTo extracts a tar into the container at path.
func (cc *ContainerClient) CopyTo(ctx context.Context, ref, path string, tarball io.Reader) error {
	resp, err := cc.c.Do(ctx, http.MethodPut, containersPath(ref, "archive")+"?path="+url.QueryEscape(path), onlyReader{tarball})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
