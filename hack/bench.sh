#!/usr/bin/env bash
# make bench: runs every benchmark script in hack/bench/ in name order. Each
# prints its own figures; benchmarks report numbers, they assert nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_BINARY=${BERTH_BINARY:-$PWD/bin/berth}
only=${BENCH:-}
for script in hack/bench/*.sh; do
  name=$(basename "$script" .sh)
  [ -n "$only" ] && [[ ",$only," != *",$name,"* ]] && continue
  echo "== bench: $name"
  bash "$script"
done
