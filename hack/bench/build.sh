#!/usr/bin/env bash
# Issue 9's figures (engine/build's Go benchmarks, run as root, plus the CLI):
#   - a cold build of a 5-step Dockerfile (FROM busybox, RUN, COPY, WORKDIR,
#     RUN; every step new, the base image in the store), in ms;
#   - the same build fully cached (nothing changed), in ms;
#   - COPY of a 200 MB context (20 random 10 MB files): hash, copy, layer,
#     compress, store, unpack; in MB/s;
#   - `berth build` of a Compose service through the daemon, cold and fully
#     cached, when bin/berth is built (BERTH_BINARY), medians of RUNS.
# BuildKit on this kind of machine: a 3-step busybox build ~940 ms cold,
# ~150 ms cached. Goals: cold < 470 ms, cached < 50 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^(BenchmarkBuildCold5Steps|BenchmarkBuildCached5Steps|BenchmarkCopy200MB)$' \
  -benchtime "${BUILD_BENCH_TIMES:-5}x" ./engine/build/ |
  awk '
    /^BenchmarkBuildCold5Steps/   { printf "build, 5 steps, cold (library): %.0f ms   (goal < 470; BuildKit ~940 for 3 steps)\n", $3/1e6 }
    /^BenchmarkBuildCached5Steps/ { printf "build, 5 steps, fully cached (library): %.1f ms   (goal < 50; BuildKit ~150)\n", $3/1e6 }
    /^BenchmarkCopy200MB/         { printf "build, COPY of a 200 MB context: %.2f s, %s MB/s\n", $3/1e9, $5 }
    /^(FAIL|---)/                 { print; failed = 1 }
    END                           { exit failed }'

berth=${BERTH_BINARY:-$PWD/bin/berth}
[ -x "$berth" ] || { echo "build, CLI: skipped ($berth not built; make build)"; exit 0; }
runs=${RUNS:-5}
work=$(mktemp -d)
root=$work/root
trap 'kill $(cat "$root/daemon.lock" 2>/dev/null) 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/proj/src"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in $("$work/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$berth" --root "$root" image import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
for i in $(seq 1 20); do echo "package p$i" > "$work/proj/src/f$i.go"; done
cat <<'EOF' > "$work/proj/Dockerfile"
FROM busybox
ARG NONCE
RUN echo "$NONCE" > /nonce && mkdir -p /app
COPY src/ /app/src/
WORKDIR /app
RUN find src -type f | wc -l > /app/count
ENV MODE=prod
CMD ["cat", "/app/count"]
EOF
printf 'name: bench\nservices:\n  app:\n    build: .\n' > "$work/proj/compose.yaml"
cd "$work/proj"
ms() {
  local s=$(date +%s%N) out
  out=$("$@" 2>&1) || { echo "build, CLI: $* failed: $out" >&2; exit 1; }
  echo $(( ($(date +%s%N) - s) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
"$berth" --root "$root" version >/dev/null # the daemon runs before timing starts
cold=() cached=()
for i in $(seq 1 "$runs"); do
  cold+=("$(ms "$berth" --root "$root" build --build-arg NONCE="$i")")
  for _ in 1 2 3; do cached+=("$(ms "$berth" --root "$root" build --build-arg NONCE="$i")"); done
done
printf 'build, CLI (berth build through the daemon), %d runs\n' "$runs"
printf '  cold          median %4d ms\n' "$(printf '%s\n' "${cold[@]}" | median)"
printf '  fully cached  median %4d ms\n' "$(printf '%s\n' "${cached[@]}" | median)"
