#!/usr/bin/env bash
# engine/container benchmarks, against a real `berth daemon` ($BERTH_BINARY,
# bin/berth by default) on a fresh state root under /var/tmp:
#   - create+start latency per container through the API (until the
#     container's process exec'd), beside engine/runtime alone creating and
#     starting the same spec, in turns: one start at a time (after a pause),
#     and in blocks of ten back-to-back starts (goal: within 10%);
#   - idle memory of berth's own processes (daemon + monitor, no container),
#     RSS and PSS from /proc/PID/smaps_rollup (goal: < 30 MB RSS);
#   - memory per running container: growth of the daemon's and the monitor's
#     memory from N=10 to N=100 running containers, / 90; the containers'
#     processes are not counted (goal: < 0.1 MB PSS);
#   - log throughput: a container flooding stdout, in lines/s, every line
#     checked in its log (goal: none lost).
# Needs root and busybox-static. Tune with CONTAINERBENCH_ARGS, e.g.
#   CONTAINERBENCH_ARGS="-starts 100 -block 20 -lines 5000000 -network none" hack/bench/container.sh
# and compare two builds' latencies in turns on the same machine state:
#   CONTAINERBENCH_ARGS="-latency-only -against /path/to/other/berth" hack/bench/container.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "container: skipped (needs root)"
  exit 0
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin/containerbench" ./engine/container/internal/containerbench
# A private copy: PSS shares a page's cost among every process that maps it,
# and other berth processes on the machine must not share ours.
if [ -x "${BERTH_BINARY:-$PWD/bin/berth}" ]; then
  cp "${BERTH_BINARY:-$PWD/bin/berth}" "$bin/berth"
else
  CGO_ENABLED=0 go build -o "$bin/berth" ./cmd/berth
fi
export BERTH_BINARY=$bin/berth
# shellcheck disable=SC2086
"$bin/containerbench" ${CONTAINERBENCH_ARGS:-}
