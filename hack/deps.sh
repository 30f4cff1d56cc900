#!/usr/bin/env bash
# Installs, from Debian's packages, what berth's tests (or benchmarks) need.
# Idempotent and quiet: when every package is already installed it does nothing.
#   hack/deps.sh demo    what make demo needs (busybox-static for the sample's tools)
#   hack/deps.sh test    packages the test suite needs
#   hack/deps.sh bench   packages the benchmarks need as well
set -euo pipefail

demo_pkgs=(busybox-static)
test_pkgs=(busybox-static docker-registry nftables skopeo iproute2 iptables git curl)
bench_pkgs=(runc crun dnsperf wrk)

case "${1:-test}" in
demo) want=("${demo_pkgs[@]}") ;;
test) want=("${test_pkgs[@]}") ;;
bench) want=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: hack/deps.sh demo|test|bench" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
