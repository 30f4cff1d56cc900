#!/usr/bin/env bash
# make bench: runs every benchmark script in hack/bench/ in name order. Each
# prints its own figures; benchmarks report numbers, they assert nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_BINARY=${BERTH_BINARY:-$PWD/bin/berth}
only=${BENCH:-}

# settle waits (up to a minute) until the CPUs are 95% idle over a second:
# the kernel tears down the namespaces and cgroups of a benchmark's
# containers in the background, and the next benchmark must not measure that.
settle() {
  local i idle total prev_idle prev_total
  read -r _ a b c d e f g h _ </proc/stat
  prev_idle=$((d + e)) prev_total=$((a + b + c + d + e + f + g + h))
  for i in $(seq 60); do
    sleep 1
    read -r _ a b c d e f g h _ </proc/stat
    idle=$((d + e)) total=$((a + b + c + d + e + f + g + h))
    if [ $(((idle - prev_idle) * 100)) -ge $(((total - prev_total) * 95)) ]; then
      return 0
    fi
    prev_idle=$idle prev_total=$total
  done
  echo "bench: the machine stayed busy; the next figures measure its neighbours too" >&2
}

for script in hack/bench/*.sh; do
  name=$(basename "$script" .sh)
  [ -n "$only" ] && [[ ",$only," != *",$name,"* ]] && continue
  settle
  echo "== bench: $name"
  bash "$script"
done
