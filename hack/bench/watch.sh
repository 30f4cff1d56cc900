#!/usr/bin/env bash
# Issue 11's figure: time from a write of the Compose file to the converged
# state for a one-service change (the edited service's new container
# running), RUNS times (default 5), next to the time berth takes to
# recreate that service by hand (`up -d` after the same edit), which is
# the container's own replace-and-start time.
set -euo pipefail
berth=${BERTH_BINARY:-$PWD/bin/berth}
runs=${RUNS:-5}
work=$(mktemp -d)
root=$work/root
b() { "$berth" --root "$root" "$@"; }
trap 'b watch stop wbench >/dev/null 2>&1 || true; b -p wbench down -t 0 >/dev/null 2>&1 || true; kill $(cat "$root/daemon.lock" 2>/dev/null) 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin" "$work/wbench"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
b image import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
cd "$work/wbench"
write() {
  cat > compose.yaml.tmp <<YAML
services:
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
    environment:
      REV: "$1"
  other:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
YAML
  mv compose.yaml.tmp compose.yaml # as an editor saves: a rename
}
app_id() { b -p wbench ps --format json | grep '"Service":"app"' | sed 's/.*"ID":"\([0-9a-f]*\)".*/\1/' || true; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

write 0
b up -d >/dev/null 2>&1
manual=()
for i in $(seq 1 "$runs"); do
  write "m$i"; s=$(date +%s%N); b up -d >/dev/null 2>&1; manual+=("$(ms_since "$s")")
done

b watch -d --resync 1h >/dev/null
sleep 0.5
watched=()
for i in $(seq 1 "$runs"); do
  before=$(app_id)
  s=$(date +%s%N); write "w$i"
  while :; do
    now=$(app_id)
    if [ -n "$now" ] && [ "$now" != "$before" ] && b -p wbench ps --format json | grep '"Service":"app"' | grep -q '"State":"running"'; then break; fi
    sleep 0.005
  done
  watched+=("$(ms_since "$s")")
done
w=$(printf '%s\n' "${watched[@]}" | median)
m=$(printf '%s\n' "${manual[@]}" | median)
printf 'watch: one-service change, %d runs\n' "$runs"
printf '  file write -> converged   median %4d ms\n' "$w"
printf '  up -d of the same change  median %4d ms (the recreate itself)\n' "$m"
printf '  watch overhead            ~%4d ms   (goal < 300 ms plus the container start)\n' "$((w - m))"
