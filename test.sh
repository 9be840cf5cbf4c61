#!/usr/bin/env bash
# Runs p2pd's whole test suite: vet, unit and end-to-end tests (real daemons,
# real curl), then every native fuzz target for a few seconds.
#   ./test.sh               everything
#   FUZZTIME=30s ./test.sh  longer fuzzing
set -euo pipefail
cd "$(dirname "$0")"
FUZZTIME=${FUZZTIME:-5s}

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is needed (apt-get install $tool)"; exit 1; }
done

go vet ./...
go test -count=1 -timeout 15m ./...

# Native fuzz targets: go test runs one -fuzz target per invocation.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "fuzz $pkg $name ($FUZZTIME)"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/p2pd-fuzz.log 2>&1 || { cat /tmp/p2pd-fuzz.log; exit 1; }
  done
done
echo "fuzzing: all targets ran $FUZZTIME without a failure"
