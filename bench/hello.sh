#!/usr/bin/env bash
# The seed's URL through Portico's full path (HTTP API -> route -> 2.0 event -> Node 22
# environment -> response mapping) against a bare Node 22 server running the same
# handler, measured in one run on this machine. Loopback only, bounded in time.
#
# Usage: bench/hello.sh [DURATION]   (default 10s per scenario)
#        PORTICO_BIN=path  run that binary instead of building target/release/portico
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
duration="${1:-10s}"

source bench/lib.sh

PORTICO_NODEJS22_BIN="$node22" "$PORTICO_BIN" serve --listen 127.0.0.1:0 \
  --data-dir "$work/data" >"$work/portico.out" 2>"$work/portico.err" &
pids+=($!)
portico="$(wait_for_line "$work/portico.out")"
# Signed with the administrator key the data dir's first start wrote.
api_id="$(.venv/bin/python bench/setup_seed.py "$portico" "$work/data/credentials")"
portico_url="$portico/execute-api/$api_id/hello?name=Dev"

"$node22" bench/baseline/hello-server.mjs 0 >"$work/node.out" &
pids+=($!)
baseline_url="$(wait_for_line "$work/node.out")/hello?name=Dev"

for url in "$portico_url" "$baseline_url"; do
  body="$(curl -sS "$url")"
  [ "$body" = '{"message":"Hello, Dev!"}' ] || { echo "unexpected answer from $url: $body" >&2; exit 1; }
  # Warm up as traffic usually arrives: one client first, then many. Portico's pool then
  # knows the function is quick (warm-first dispatch queues for its hot environments);
  # a burst of 32 into a function never invoked before starts 32 environments, as Lambda would.
  wrk -t1 -c1 -d1s "$url" >/dev/null
  wrk -t1 -c32 -d2s "$url" >/dev/null
done

run() { wrk -t1 -c"$2" -d"$duration" --latency "$1"; }
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$2%" '$1 == p {print $2}' <<<"$1"; }

mkdir -p bench/results
report="bench/results/hello-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "node: $("$node22" --version); duration per scenario: $duration; wrk -t1"
  printf '%-10s %5s %12s %10s %10s\n' scenario conns req/s p50 p99
  for c in 32 1; do
    p="$(run "$portico_url" "$c")"; b="$(run "$baseline_url" "$c")"
    printf '%-10s %5s %12s %10s %10s\n' portico "$c" "$(rps "$p")" "$(pct "$p" 50)" "$(pct "$p" 99)"
    printf '%-10s %5s %12s %10s %10s\n' bare-node "$c" "$(rps "$b")" "$(pct "$b" 50)" "$(pct "$b" 99)"
    awk -v a="$(rps "$p")" -v b="$(rps "$b")" -v c="$c" 'BEGIN {printf "ratio portico/bare-node at %s conns: %.2f\n", c, a / b}'
  done
} | tee "$report"
echo "saved to $report" >&2
