#!/usr/bin/env bash
# Runs p2pd's whole test suite: vet, staticcheck, unit tests under -race and
# end-to-end tests (real daemons, real curl), then every native fuzz target
# for a few seconds.
#   ./test.sh               everything
#   FUZZTIME=30s ./test.sh  longer fuzzing
set -euo pipefail
cd "$(dirname "$0")"
FUZZTIME=${FUZZTIME:-5s}

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is needed (apt-get install $tool)"; exit 1; }
done

export PATH="$PATH:$(go env GOPATH)/bin"
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

go vet ./...
staticcheck ./...
# Unit and in-process packages run under the race detector; interop/ starts
# real daemon binaries in network namespaces, where -race buys little and
# costs minutes, so it runs without.
go test -race -count=1 -timeout 15m $(go list ./... | grep -v /interop)
go test -count=1 -timeout 15m ./interop/...

# Native fuzz targets: go test runs one -fuzz target per invocation.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
    echo "fuzz $pkg $name ($FUZZTIME)"
    for try in 1 2 3; do
      if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then break; fi
      # Go's fuzzer can end a clean run with "context deadline exceeded" when a
      # worker is slow to stop on a loaded machine; that is no finding, so it
      # gets up to two more runs (CI once saw it twice in a row on
      # FuzzResponse). A real finding writes its input to testdata.
      if [ "$try" -lt 3 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "  (fuzzer stopped late, not a finding; running it again)"
        continue
      fi
      cat "$log"; exit 1
    done
  done
done
echo "fuzzing: all targets ran $FUZZTIME without a failure"
