#!/usr/bin/env bash
# Issue 10's figures: wall time of a cold `up -d`, a no-op `up -d` and
# `down` for a 10-service project whose image is present, with processes
# that stop on SIGTERM. Each is run RUNS times (default 5); medians shown.
set -euo pipefail
berth=${BERTH_BINARY:-$PWD/bin/berth}
runs=${RUNS:-5}
work=$(mktemp -d)
root=$work/root
trap '"$berth" --root "$root" -p bench down -t 1 >/dev/null 2>&1 || true; kill $(cat "$root/daemon.lock" 2>/dev/null) 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin" "$work/proj"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in sh sleep true; do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$berth" --root "$root" image import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null

{
  echo "name: bench"
  echo "services:"
  for i in $(seq 1 10); do
    cat <<SVC
  s$i:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
SVC
  done
} > "$work/proj/compose.yaml"
cd "$work/proj"

ms() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$berth" --root "$root" version >/dev/null # the daemon and monitor run before timing starts
cold=() noop=() down=()
for _ in $(seq 1 "$runs"); do
  cold+=("$(ms "$berth" --root "$root" up -d)")
  for _ in 1 2 3; do noop+=("$(ms "$berth" --root "$root" up -d)"); done
  down+=("$(ms "$berth" --root "$root" down)")
done
printf 'reconcile: 10 services, %d runs\n' "$runs"
printf '  cold up -d   median %4d ms   (goal < 1000; docker compose ~7400)\n' "$(printf '%s\n' "${cold[@]}" | median)"
printf '  no-op up -d  median %4d ms   (goal < 100; docker compose ~200)\n' "$(printf '%s\n' "${noop[@]}" | median)"
printf '  down         median %4d ms   (goal < 1000; docker compose ~1800)\n' "$(printf '%s\n' "${down[@]}" | median)"
