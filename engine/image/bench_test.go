package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/engine/image/imagetest"
	"github.com/berth-dev/berth/internal/testutil"
)

// benchLayer is a 100 MB layer shaped like a real one: half in ten large
// files, half in two thousand small ones spread over directories.
func benchLayer(b *testing.B) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(name string, size int) {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(size), Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
	}
	for d := range 20 {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/d%02d/", d), Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for i := range 10 {
		write(fmt.Sprintf("usr/lib/big%02d.so", i), 5<<20)
	}
	for i := range 2000 {
		write(fmt.Sprintf("usr/lib/d%02d/f%04d", i%20, i), 25<<10+i%7)
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkUnpack100MB is the time to unpack a 100 MB layer into a
// snapshot directory and sync it, as the store does.
func BenchmarkUnpack100MB(b *testing.B) {
	testutil.RequireRoot(b)
	layer := benchLayer(b)
	base := os.Getenv("BERTH_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	}
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(base, fmt.Sprintf("unpack-%d", i))
		os.MkdirAll(dir, 0o755)
		if _, err := unpackTar(context.Background(), bytes.NewReader(layer), dir); err != nil {
			b.Fatal(err)
		}
		if err := syncFS(dir); err != nil {
			b.Fatal(err)
		}
	}
	// Removal waits for the end: deleting thousands of files right
	// before the next unpack would bill it for the file system's cleanup.
	b.StopTimer()
	for i := 0; ; i++ {
		dir := filepath.Join(base, fmt.Sprintf("unpack-%d", i))
		if _, err := os.Stat(dir); err != nil {
			break
		}
		os.RemoveAll(dir)
	}
}

// BenchmarkPull200MB pulls an image with one 200 MB layer of random data
// (gzip cannot shrink it) from a registry on loopback into an empty store:
// download, digest check, unpack and sync, as `berth image pull` does.
func BenchmarkPull200MB(b *testing.B) {
	testutil.RequireRoot(b)
	reg := imagetest.StartRegistry(b, imagetest.AuthNone)
	ref := reg.Host + "/bench/big:1"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, 200<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	tw.WriteHeader(&tar.Header{Name: "random.bin", Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644})
	tw.Write(data)
	tw.Close()
	src, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	img, err := src.Create(context.Background(), CreateOptions{Layers: []NewLayer{{Tar: &buf}}, Tags: []string{ref}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := src.Push(context.Background(), ref, PushOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(img.Layers[0].Size)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := dst.Pull(context.Background(), ref, PullOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		dst.Close()
		b.StartTimer()
	}
}
