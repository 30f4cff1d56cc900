#!/usr/bin/env bash
# Image benchmarks:
#   - pull throughput from a loopback registry (Debian's docker-registry),
#     one 200 MB layer of random data (so gzip cannot shrink it), through
#     the CLI and the daemon: download, verify, unpack, in MB/s of layer;
#   - the time to unpack a 100 MB layer (the Go benchmark
#     BenchmarkUnpack100MB: 10 large files and 2000 small ones, synced).
# Needs root (snapshots keep owners and device nodes).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BERTH_BINARY:-$PWD/bin/berth}
[ -x "$BIN" ] || { echo "image bench: no berth binary at $BIN (make build)" >&2; exit 1; }
SIZE_MB=${IMAGE_BENCH_MB:-200}

work=$(mktemp -d /var/tmp/berth-bench-image.XXXXXX)
registry_pid=""
cleanup() {
  for root in "$work/push" "$work/pull"; do
    if [ -f "$root/daemon.lock" ]; then
      pid=$(cat "$root/daemon.lock" 2>/dev/null || true)
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    fi
  done
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done

ref="127.0.0.1:$port/bench/big:1"
mkdir -p "$work/rootfs"
head -c "${SIZE_MB}M" /dev/urandom >"$work/rootfs/random.bin"
tar -C "$work/rootfs" -cf "$work/layer.tar" .
"$BIN" --root "$work/push" image import "$work/layer.tar" "$ref" >/dev/null
"$BIN" --root "$work/push" --progress quiet image push "$ref" >/dev/null
layer_bytes=$(find "$work/push/image/blobs/sha256" -type f -size +1M -printf '%s\n' | sort -n | tail -1)

# Start the pulling daemon first: its start is not the pull's time.
"$BIN" --root "$work/pull" image ls >/dev/null
start=$(date +%s.%N)
"$BIN" --root "$work/pull" --progress quiet image pull "$ref" >/dev/null
end=$(date +%s.%N)
python3 - "$layer_bytes" "$start" "$end" <<'EOF'
import sys
size, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
secs = end - start
print(f"image pull, loopback registry, one {size/1e6:.0f} MB layer (download + verify + unpack): "
      f"{secs:.2f}s, {size/1e6/secs:.1f} MB/s")
EOF

BERTH_BENCH_DIR="$work" go test -run '^$' -bench 'BenchmarkUnpack100MB$' -benchtime 5x ./engine/image/ |
  awk '/^BenchmarkUnpack100MB/ { printf "image unpack, 100 MB layer (2010 files, synced): %.0f ms per layer, %s MB/s\n", $3/1e6, $5 }'
