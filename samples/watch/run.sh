#!/usr/bin/env bash
# Shows berth watch at work: start watching, edit compose.yaml the way an
# editor or a `git pull` would, and see the running service follow.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
berth=${BERTH:-$top/bin/berth}
cd "$top/samples/watch"
port=${HELLO_PORT:-8081}
ask() {
  for _ in $(seq 1 100); do
    out=$(curl -fsS --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null) && { echo "$out"; return; }
    sleep 0.1
  done
  echo "no answer on port $port" >&2; return 1
}
wait_for() { for _ in $(seq 1 100); do ask | grep -q "$1" && return; sleep 0.1; done; echo "never saw: $1" >&2; return 1; }

CGO_ENABLED=0 go build -trimpath -o app/app ./app
cp compose.yaml compose.yaml.orig
trap 'mv compose.yaml.orig compose.yaml; "$berth" watch stop hello >/dev/null 2>&1 || true' EXIT

"$berth" up -d --build
echo "== before:  $(ask)"
"$berth" watch -d
sed -i 's/GREETING: "hello, world"/GREETING: "hello, berth watch"/' compose.yaml
wait_for "hello, berth watch"
echo "== after:   $(ask)"
"$berth" watch ls
echo "== to finish: $berth down (in samples/watch)"
