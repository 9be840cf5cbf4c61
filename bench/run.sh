#!/usr/bin/env bash
# bench/run.sh [flags]: build p2pd, p2pctl and the harness, then run the benchmark
# (p2pd beside direct TCP, raw quic-go, a quic-go tunnel and stunnel4, interleaved).
# Flags go to the harness; `bench/run.sh -help` lists them. Common ones:
#   -quick            short run (under 2 minutes on 2 cores)
#   -netns            also bulk, RTT, many-client request/response and new connections between
#                     two network namespaces (root)
#   -holepunch        instead, hole punching through pairs of NATs in namespaces (root): the
#                     share of relayed paths that become direct, and how long it takes
#   -scale N          instead, N daemons in namespaces, DHT only (root): idle sessions, RSS, CPU,
#                     goroutines and traffic per node, cold first contacts (bench/README.md, Scale)
#   -peers N          idle peer sessions for the memory figure (default 200)
#   -out DIR          where bench-results.md and .json go (default bench/results)
#   -keep             keep the scratch directory with the daemons' logs
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(mktemp -d)
NSPREFIX="pb$$"
cleanup() {
  rm -rf "$BIN"
  # The harness deletes its namespaces itself; this covers a harness that was killed.
  if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    ip netns del "${NSPREFIX}a" 2>/dev/null || true
    ip netns del "${NSPREFIX}b" 2>/dev/null || true
    for ns in $(ip netns list | awk '{print $1}' | grep "^${NSPREFIX}[hs]" || true); do
      ip netns del "$ns" 2>/dev/null || true
    done
  fi
}
trap cleanup EXIT

echo "building p2pd, p2pctl and the harness" >&2
go build -o "$BIN/p2pd" ./cmd/p2pd
go build -o "$BIN/p2pctl" ./cmd/p2pctl
go build -o "$BIN/bench" ./bench

for a in "$@"; do
  case "$a" in -h|-help|--help) "$BIN/bench" run -help 2>&1 | sed 's/^Usage: bench \[run\]/Usage: bench\/run.sh/'; exit 0 ;; esac
done

if ! command -v stunnel4 >/dev/null && ! command -v stunnel >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing stunnel4 (Debian package)" >&2
    { apt-get install -y -qq stunnel4 || { apt-get update -qq && apt-get install -y -qq stunnel4; }; } >/dev/null 2>&1 ||
      echo "note: could not install stunnel4; the stunnel baseline is skipped" >&2
  else
    echo "note: stunnel4 is not installed and this is not root; the stunnel baseline is skipped" >&2
  fi
fi

# 10,000 proxied connections need about 20,000 descriptors in the harness and 10,000 in each daemon.
if [ "$(id -u)" = 0 ]; then ulimit -Hn 262144 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

OUT=bench/results
for a in "$@"; do case "$a" in -out|--out|-out=*|--out=*) OUT="" ;; esac; done
BENCH_COMMAND="bench/run.sh $*" "$BIN/bench" run -bin "$BIN" -netns-prefix "$NSPREFIX" ${OUT:+-out "$OUT"} "$@"
