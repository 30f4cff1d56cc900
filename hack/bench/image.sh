#!/usr/bin/env bash
# Image benchmarks (Go benchmarks of engine/image, run as root):
#   - pull throughput from a loopback registry (Debian's docker-registry):
#     one 200 MB layer of random data (gzip cannot shrink it) into an empty
#     store: download, digest check, unpack, sync; in MB/s of layer;
#   - the time to unpack a 100 MB layer (10 large files and 2000 small
#     ones) into a snapshot and sync it.
# Stores live under the Go test's temporary directory ($TMPDIR, /tmp).
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^(BenchmarkPull200MB|BenchmarkUnpack100MB)$' -benchtime "${IMAGE_BENCH_TIMES:-3}x" ./engine/image/ |
  awk '
    /^BenchmarkPull200MB/   { printf "image pull, loopback registry, one 200 MB layer (download + verify + unpack): %.2f s, %s MB/s\n", $3/1e9, $5 }
    /^BenchmarkUnpack100MB/ { printf "image unpack, 100 MB layer (2010 files, synced): %.0f ms, %s MB/s\n", $3/1e6, $5 }
    /^(FAIL|---)/           { print; failed = 1 }
    END                     { exit failed }'
