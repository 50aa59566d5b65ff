#!/usr/bin/env bash
# The seed's URL through Portico's full path (HTTP API -> route -> 2.0 event -> Node 22
# environment -> response mapping) against a bare Node 22 server running the same
# handler, and against serverless-offline 13 (in-process) serving the same function,
# measured in one run on this machine. Loopback only, bounded in time.
#
# Usage: bench/hello.sh [DURATION] [ROUNDS]   (default 10s per target and connection
#        count, measured in ROUNDS (default 5) turns of DURATION/ROUNDS each)
#        PORTICO_BIN=path  run that binary instead of building target/release/portico
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
duration="${1:-10s}"
rounds="${2:-5}"

source bench/lib.sh

PORTICO_NODEJS22_BIN="$node22" "$PORTICO_BIN" serve --listen 127.0.0.1:0 \
  --data-dir "$work/data" >"$work/portico.out" 2>"$work/portico.err" &
pids+=($!)
portico="$(wait_for_line "$work/portico.out")"
# Signed with the administrator key the data dir's first start wrote.
api_id="$(.venv/bin/python bench/setup_seed.py "$portico" "$work/data/credentials")"
portico_url="$portico/execute-api/$api_id/hello?name=Dev"

"$node22" bench/baseline/hello-server.cjs 0 >"$work/node.out" &
pids+=($!)
baseline_url="$(wait_for_line "$work/node.out")/hello?name=Dev"

# serverless-offline, pinned in bench/baseline/serverless-offline (installed once into
# .tools), run by the same Node 22; no telemetry, no update check, no network.
offline_tools=.tools/serverless-offline
if ! cmp -s bench/baseline/serverless-offline/package.json "$offline_tools/package.json" 2>/dev/null \
  || [ ! -d "$offline_tools/node_modules/serverless-offline" ]; then
  echo "bench: installing serverless and serverless-offline into $offline_tools" >&2
  mkdir -p "$offline_tools"
  cp bench/baseline/serverless-offline/package.json "$offline_tools/"
  npm install --silent --no-audit --no-fund --prefix "$offline_tools" >&2
fi
service="$work/serverless-offline"
mkdir -p "$service"
cp bench/baseline/serverless-offline/serverless.yml examples/hello-api/index.mjs "$service/"
ln -s "$PWD/$offline_tools/node_modules" "$service/node_modules"
free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
offline_port="$(free_port)"; lambda_port="$(free_port)"
(cd "$service" && SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  exec "$node22" node_modules/serverless/bin/serverless.js offline --useInProcess --noPrependStageInUrl \
  --host 127.0.0.1 --httpPort "$offline_port" --lambdaPort "$lambda_port" >"$work/offline.out" 2>&1) &
pids+=($!)
for _ in $(seq 600); do grep -q 'Server ready' "$work/offline.out" && break; sleep 0.05; done
grep -q 'Server ready' "$work/offline.out" || { echo "serverless-offline did not start: $(cat "$work/offline.out")" >&2; exit 1; }
offline_url="http://127.0.0.1:$offline_port/hello?name=Dev"

for url in "$portico_url" "$baseline_url" "$offline_url"; do
  body="$(curl -sS "$url")"
  [ "$body" = '{"message":"Hello, Dev!"}' ] || { echo "unexpected answer from $url: $body" >&2; exit 1; }
  # Warm up as traffic usually arrives: one client first, then many. Portico's pool then
  # knows the function is quick (warm-first dispatch queues for its hot environments);
  # a burst of 32 into a function never invoked before starts 32 environments, as Lambda would.
  # Then as long as a measurement: each of Portico's environments gets a share of the
  # requests, and its JIT needs several seconds of them to settle (all three alike).
  wrk -t1 -c1 -d1s "$url" >/dev/null
  wrk -t1 -c32 -d"$duration" "$url" >/dev/null
done

# The host's speed drifts by tens of percent from one few-second window to the next (a
# shared VM): rather than one long window per target, the targets take turns in short
# windows, round after round, and each round's ratios compare windows seconds apart.
seconds="${duration%s}"
window=$(( seconds / rounds )); [ "$window" -ge 1 ] || window=1
run() { wrk -t1 -c"$2" -d"${window}s" --latency "$1"; }
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$2%" '$1 == p {print $2}' <<<"$1"; }

mkdir -p bench/results
report="bench/results/hello-$(date -u +%Y%m%dT%H%M%SZ).txt"
rows="$work/rows.tsv"
{
  echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "node: $("$node22" --version); $rounds rounds of ${window}s windows per target and connection count; wrk -t1"
  printf '%-6s %-18s %5s %12s %10s %10s\n' round scenario conns req/s p50 p99
  for c in 32 1; do
    for r in $(seq "$rounds"); do
      for t in portico bare-node serverless-offline; do
        case $t in portico) u="$portico_url" ;; bare-node) u="$baseline_url" ;; *) u="$offline_url" ;; esac
        out="$(run "$u" "$c")"
        fig=("$r" "$t" "$c" "$(rps "$out")" "$(pct "$out" 50)" "$(pct "$out" 99)")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${fig[@]}" >>"$rows"
        printf '%-6s %-18s %5s %12s %10s %10s\n' "${fig[@]}"
      done
    done
  done
  .venv/bin/python bench/hello_summary.py "$rows"
} | tee "$report"
echo "saved to $report" >&2
