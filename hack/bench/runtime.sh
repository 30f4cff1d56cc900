#!/usr/bin/env bash
# Start-to-exit latency of `berth runtime run` on a busybox `true` bundle,
# side by side with runc and crun on the same bundle, and a bare
# unshare+chroot of the same `true` as the floor.
#
# The runs are interleaved (berth, runc, crun, floor, berth, ...) so that
# the load of a shared machine falls on all of them alike; medians, not
# means, for the same reason.
#
# crun refuses to start on a cgroup v1 hybrid host unless a hugetlb v1
# hierarchy is mounted: this script mounts one for crun's sake if it is
# missing (berth does not need it).
#
# Environment: BERTH_BINARY (default bin/berth), RUNS (default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
berth=${BERTH_BINARY:-$PWD/bin/berth}
runs=${RUNS:-60}

[ "$(id -u)" = 0 ] || { echo "runtime bench: needs root" >&2; exit 1; }
for tool in runc crun unshare; do
  command -v "$tool" >/dev/null || { echo "runtime bench: $tool is not installed (make deps)" >&2; exit 1; }
done
[ -x "$berth" ] || { echo "runtime bench: no berth binary at $berth (make build)" >&2; exit 1; }
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "runtime bench: no $busybox (busybox-static)" >&2; exit 1; }

if [ -d /sys/fs/cgroup/memory ] && ! grep -q ' /sys/fs/cgroup/hugetlb ' /proc/self/mountinfo; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb none /sys/fs/cgroup/hugetlb
  echo "(mounted a hugetlb cgroup v1 hierarchy for crun)"
fi

tmp=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
cleanup() {
  "$berth" --root "$tmp/berth" runtime delete --force bench-berth >/dev/null 2>&1 || true
  runc --root "$tmp/runc" delete --force bench-runc >/dev/null 2>&1 || true
  crun --root "$tmp/crun" delete --force bench-crun >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bundle=$tmp/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp "$busybox" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
# berth's default spec (Docker's defaults: capabilities, masks, devices,
# seccomp), written once and run by all three.
"$berth" runtime spec -b "$bundle" -- true

mkdir -p "$tmp/berth" "$tmp/runc" "$tmp/crun"
names=(berth runc crun unshare+chroot)
cmd() {
  case $1 in
    berth) "$berth" --root "$tmp/berth" runtime run -b "$bundle" bench-berth ;;
    runc) runc --root "$tmp/runc" run -b "$bundle" bench-runc ;;
    crun) crun --root "$tmp/crun" run -b "$bundle" bench-crun ;;
    unshare+chroot) unshare -fmpnui chroot "$bundle/rootfs" /bin/true ;;
  esac </dev/null >/dev/null 2>"$tmp/err"
}
# One run, its wall time in microseconds on fd 3 ($EPOCHREALTIME: no fork
# to read the clock).
once() {
  local t0=$EPOCHREALTIME
  if ! cmd "$1"; then
    echo "runtime bench: $1 failed: $(cat "$tmp/err")" >&2
    exit 1
  fi
  local t1=$EPOCHREALTIME
  echo "$1 $(( (${t1/./} - ${t0/./}) ))" >&3
}
exec 3>/dev/null
for name in "${names[@]}"; do  # warm the page cache and the binaries
  for _ in 1 2 3 4 5; do once "$name"; done
done
exec 3>"$tmp/times"
for ((i = 0; i < runs; i++)); do
  for ((j = 0; j < ${#names[@]}; j++)); do
    once "${names[(i + j) % ${#names[@]}]}"
  done
done
exec 3>&-

median() { grep "^$1 " "$tmp/times" | awk '{print $2}' | sort -n | awk '{v[NR]=$1} END {printf "%.1f %.1f %.1f\n", v[int((NR+1)/2)]/1000, v[1]/1000, v[int(NR*0.9)]/1000}'; }
echo "runtime start-to-exit of busybox true, $runs interleaved runs each (median, min, p90):"
declare -A med
for name in "${names[@]}"; do
  read -r m lo p90 < <(median "$name")
  med[$name]=$m
  printf '  %-15s %7s ms   (min %s, p90 %s)\n' "$name" "$m" "$lo" "$p90"
done
awk -v b="${med[berth]}" -v c="${med[crun]}" -v r="${med[runc]}" -v f="${med[unshare+chroot]}" \
  'BEGIN { printf "  berth/crun %.2fx   berth/runc %.2fx   berth/floor %.2fx\n", b/c, b/r, b/f }'
leftover=$(ls "$tmp/berth/runtime" 2>/dev/null | grep -v '^\.' || true)
[ -z "$leftover" ] || { echo "runtime bench: berth left containers behind: $leftover" >&2; exit 1; }
