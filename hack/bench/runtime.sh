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
for tool in runc crun unshare python3; do
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
python3 - "$runs" "$berth" "$tmp" "$bundle" <<'EOF'
import statistics, subprocess, sys, time

runs, berth, tmp, bundle = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmds = {
    "berth": [berth, "--root", tmp + "/berth", "runtime", "run", "-b", bundle, "bench-berth"],
    "runc": ["runc", "--root", tmp + "/runc", "run", "-b", bundle, "bench-runc"],
    "crun": ["crun", "--root", tmp + "/crun", "run", "-b", bundle, "bench-crun"],
    "unshare+chroot": ["unshare", "-fmpnui", "chroot", bundle + "/rootfs", "/bin/true"],
}
names = list(cmds)

def once(name):
    t = time.perf_counter()
    r = subprocess.run(cmds[name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"runtime bench: {name} failed ({r.returncode}): {r.stderr.decode().strip()}")
    return dt * 1000

for name in names:  # warm the page cache and the binaries
    for _ in range(5):
        once(name)
times = {n: [] for n in names}
for i in range(runs):
    for name in names[i % len(names):] + names[:i % len(names)]:
        times[name].append(once(name))

med = {n: statistics.median(times[n]) for n in names}
print(f"runtime start-to-exit of busybox true, {runs} interleaved runs each (median, min, p90):")
for n in names:
    t = sorted(times[n])
    print(f"  {n:15s} {med[n]:7.1f} ms   (min {t[0]:.1f}, p90 {t[int(len(t) * 0.9)]:.1f})")
print(f"  berth/crun {med['berth'] / med['crun']:.2f}x   berth/runc {med['berth'] / med['runc']:.2f}x   "
      f"berth/floor {med['berth'] / med['unshare+chroot']:.2f}x")
EOF
leftover=$(ls "$tmp/berth/runtime" 2>/dev/null | grep -v '^\.' || true)
[ -z "$leftover" ] || { echo "runtime bench: berth left containers behind: $leftover" >&2; exit 1; }
