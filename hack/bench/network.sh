#!/usr/bin/env bash
# engine/network: HTTP throughput (wrk, keep-alive) through a published port
# against straight to the container's address, on 127.0.0.1 and on the
# host's own address (goal: >= 90% of direct; Docker's userland proxy on
# 127.0.0.1 reached 42% on this kind of machine), and the time to make a
# sandbox and attach it to a network. Needs root and wrk.
#   NETBENCH_ARGS="-d 10s -c 64" hack/bench/network.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "network: skipped (needs root)"
  exit 0
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin/netbench" ./engine/network/internal/netbench
# shellcheck disable=SC2086
"$bin/netbench" ${NETBENCH_ARGS:-}
