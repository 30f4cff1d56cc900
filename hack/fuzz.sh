#!/usr/bin/env bash
# make fuzz: runs each fuzz target of the module for the given time (default
# 30s). Crashers that go test finds stay in the package's testdata/fuzz and so
# become regression cases of the ordinary test run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== fuzz: $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
