package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine/build"
	"github.com/berth-dev/berth/engine/enginetest"
)

// tarGz makes a gzip'd tar of files (path -> content; "->x" a symlink).
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		hdr := &tar.Header{Name: name, Mode: 0o640, Size: int64(len(content)), Typeflag: tar.TypeReg, Uid: 7, Gid: 8}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			hdr = &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(content))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestAddCopyModesTargetsAndURLs(t *testing.T) {
	t.Parallel()
	e := enginetest.Open(t)
	enginetest.Busybox(t, e, "busybox")
	payload := "downloaded over http\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Tue, 15 Nov 1994 08:12:31 GMT")
		fmt.Fprint(w, payload)
	}))
	defer srv.Close()
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(payload)))
	dir := newContext(t, fmt.Sprintf(`FROM busybox AS base
RUN echo base > /base

FROM busybox AS broken
RUN exit 1

FROM base AS extra
ADD archive.tar.gz /opt/
ADD plain.txt /plain.txt
ADD --checksum=sha256:%s %s/files/page.txt /downloads/
COPY --chmod=0751 tool.sh /usr/local/bin/tool
COPY --from=busybox /etc/passwd /copied-passwd
COPY --link link.txt /linked.txt
VOLUME /data
RUN stat -c '%%a %%u:%%g %%n' /opt/pkg/lib.txt /usr/local/bin/tool /downloads/page.txt && cat /opt/pkg/lib.txt /downloads/page.txt && readlink /opt/pkg/current && head -1 /copied-passwd && cat /plain.txt /linked.txt && cat /base
`, sum, srv.URL), map[string]string{
		"plain.txt": "plain\n",
		"tool.sh":   "#!/bin/sh\n",
		"link.txt":  "linked\n",
	})
	if err := os.WriteFile(filepath.Join(dir, "archive.tar.gz"), tarGz(t, map[string]string{"pkg/lib.txt": "from the archive\n", "pkg/current": "->lib.txt"}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rec := mustBuild(t, e, dir, build.Options{Tags: []string{"add:1"}, Target: "extra"})
	want := "640 7:8 /opt/pkg/lib.txt\n751 0:0 /usr/local/bin/tool\n600 0:0 /downloads/page.txt\nfrom the archive\ndownloaded over http\nlib.txt\nroot:x:0:0:root:/root:/bin/sh\nplain\nlinked\nbase\n"
	if out := rec.output(); out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
	img, err := e.Images.Resolve(context.Background(), "add:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.Config.Config.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", img.Config.Config.Volumes)
	}
	// The broken stage is not needed by the target, so it never ran.
	if rec.has("exit 1") {
		t.Error("an unneeded stage was built")
	}
	// A wrong checksum fails the ADD.
	writeTree(t, dir, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%064d %s/x /x\n", 0, srv.URL)})
	if _, _, err := doBuild(t, e, dir, build.Options{}); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("ADD with a wrong checksum: %v", err)
	}
}
