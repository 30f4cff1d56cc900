#!/usr/bin/env bash
# make demo: build the counter sample's program, bring samples/counter up
# with berth, and ask it a few times: the visit count goes up and the
# replicas of web take turns answering (berth's DNS round robin).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
berth=${BERTH:-$top/bin/berth}
cd "$top/samples/counter"

echo "== building the sample's program (static Go) and taking busybox-static for its tools"
CGO_ENABLED=0 go build -trimpath -o app/app ./app
cp "$(command -v busybox)" app/busybox

echo "== berth up -d --build (in samples/counter)"
"$berth" up -d --build

port=${COUNTER_PORT:-8080}
echo "== asking http://127.0.0.1:$port a few times"
fetch() {
  if command -v curl >/dev/null; then
    curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null
  else
    busybox wget -qO- "http://127.0.0.1:$port/" 2>/dev/null
  fi
}
for _ in $(seq 1 100); do fetch >/dev/null && break; sleep 0.1; done
for _ in 1 2 3 4 5 6; do
  fetch || { echo "no answer; see: $berth logs (in samples/counter)"; exit 1; }
done

echo
"$berth" ps
cat <<MSG

The counter runs. Try:
  cd samples/counter
  $berth logs web                 # the three replicas' output
  $berth up -d --scale web=5      # more replicas, DNS follows
  $berth down                     # stop it; the counts stay in the volume
  $berth down -v                  # and forget them
MSG
