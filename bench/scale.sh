#!/usr/bin/env bash
# Many functions and routes on one server, and the warm path: the seed's URL
# (GET /hello?name=Dev through its HTTP API, as bench/hello.sh) measured on a fresh
# server, then again on the same server once FUNCTIONS more functions and an API of
# ROUTES routes are deployed (bench/scale_deploy.py), plus a request routed through that
# big API's table. Portico's resident memory before, after, and after a restart on the
# same data dir. Loopback only, bounded in time.
#
# Usage: bench/scale.sh [DURATION] [FUNCTIONS] [ROUTES]   (default 5s 1000 10000)
#   BENCH_ROUNDS=n   wrk runs per figure, the median is shown (default 3)
#   SCALE_DEPLOY_ARGS=--auto-deploy   keep the stage's AutoDeploy on while routes are made
#   PORTICO_BIN=path  run that binary instead of building target/release/portico
# Smoke run: bench/scale.sh 1s 50 500 (with BENCH_ROUNDS=1).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
duration="${1:-5s}"
functions="${2:-1000}"
routes="${3:-10000}"
rounds="${BENCH_ROUNDS:-3}"

source bench/lib.sh  # PORTICO_BIN, node22, work, pids, wait_for_line
seed_body='{"message":"Hello, Dev!"}'
pid=

start_portico() { # starts Portico on $work/data; sets pid and portico (its URL)
  : >"$work/portico.out"
  PORTICO_NODEJS22_BIN="$node22" PORTICO_LOG=warn "$PORTICO_BIN" serve --listen 127.0.0.1:0 \
    --data-dir "$work/data" >"$work/portico.out" 2>>"$work/portico.err" &
  pid=$!
  pids=("$pid")
  portico="$(wait_for_line "$work/portico.out")"
}
stop_portico() { kill "$pid"; wait "$pid" || true; pid=; pids=(); }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
check() { # URL: the seed's answer, or fail
  local body
  body="$(curl -sS "$1")"
  [ "$body" = "$seed_body" ] || { echo "unexpected answer from $1: $body" >&2; exit 1; }
}
# One wrk run -> "req/s p50 p99 timeouts"; fails on a non-2xx answer or a socket error
# other than wrk's 2 s timeout (counted: a latency, not a wrong answer).
wrk_once() {
  local out
  out="$(wrk -t1 -c"$2" -d"$duration" --latency "$1")"
  if grep -q 'Non-2xx' <<<"$out" || grep -qE 'Socket errors: connect [1-9]|read [1-9]|write [1-9]' <<<"$out"; then
    echo "wrk -c$2 $1: errors: $out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
    /Socket errors/ {t = $NF} END {print r, p50, p99, t + 0}' <<<"$out"
}
# URL CONNS -> the median of $rounds runs by req/s: "req/s p50 p99 min-max timeouts"
measure() {
  local runs
  runs="$(for _ in $(seq "$rounds"); do wrk_once "$1" "$2"; done | sort -n -k1,1)"
  awk -v n="$rounds" 'NR == int((n + 1) / 2) {m = $1 " " $2 " " $3} NR == 1 {lo = $1} {hi = $1; t += $4}
    END {printf "%s %.0f-%.0f %d\n", m, lo, hi, t}' <<<"$runs"
}
row() { # label conns "req/s p50 p99 range timeouts"
  read -r r p50 p99 range t <<<"$3"
  printf '%-40s %5s %10s %10s %10s %13s %8s\n' "$1" "$2" "$r" "$p50" "$p99" "$range" "$t"
}
warm_up() { # as bench/hello.sh: one client first (the pool learns the function is quick), then many
  wrk -t1 -c1 -d1s "$1" >/dev/null
  wrk -t1 -c32 -d2s "$1" >/dev/null
}
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN {printf "%.2f", a / b}'; }

start_portico
api_id="$(.venv/bin/python bench/setup_seed.py "$portico" "$work/data/credentials")"
seed_url="$portico/execute-api/$api_id/hello?name=Dev"
check "$seed_url"
warm_up "$seed_url"
sleep 0.5
rss_fresh="$(rss_mb)"
before32="$(measure "$seed_url" 32)"
before1="$(measure "$seed_url" 1)"

t0=$(date +%s.%N)
deploy="$(.venv/bin/python bench/scale_deploy.py "$portico" "$work/data/credentials" "$functions" "$routes" \
  ${SCALE_DEPLOY_ARGS:-})"
deploy_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
sleep 0.5
rss_deployed="$(rss_mb)"
field() { .venv/bin/python -c 'import json, sys; v = json.loads(sys.argv[1])[sys.argv[2]]; print(v if isinstance(v, str) else (" ".join(map(str, v)) if isinstance(v, list) else f"{v:.1f}"))' "$deploy" "$1"; }
big_url="$portico/execute-api/$(field api_id)$(field sample_path)"
check "$seed_url"
check "$big_url"
warm_up "$seed_url"
after32="$(measure "$seed_url" 32)"
after1="$(measure "$seed_url" 1)"
warm_up "$big_url"
big32="$(measure "$big_url" 32)"
big1="$(measure "$big_url" 1)"
sleep 0.5
rss_after="$(rss_mb)"
stop_portico
start_portico
check "$portico/execute-api/$api_id/hello?name=Dev"
sleep 0.5
rss_restart="$(rss_mb)"

mkdir -p bench/results
report="bench/results/scale-${functions}x${routes}-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "machine: $(nproc) cores, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "portico: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty') ($PORTICO_BIN)"
  echo "node: $("$node22" --version); wrk -t1, $duration per run, median of $rounds runs (their range of req/s;" \
    ">2s: requests wrk gave up on after 2 s, all runs)"
  echo "deployed on the running server in ${deploy_s}s: $functions functions ($(field create_functions_s)s)," \
    "their permissions ($(field add_permissions_s)s) and integrations ($(field create_integrations_s)s)," \
    "$routes routes ($(field create_routes_s)s${SCALE_DEPLOY_ARGS:+, $SCALE_DEPLOY_ARGS})"
  echo "ms per CreateRoute in each tenth of the routes: $(field create_route_ms_by_tenth)"
  printf '%-40s %5s %10s %10s %10s %13s %8s\n' scenario conns req/s p50 p99 'req/s range' '>2s'
  row "seed, fresh server" 32 "$before32"
  row "seed, +$functions functions +$routes routes" 32 "$after32"
  row "big API: GET $(field sample_path | cut -d'?' -f1)" 32 "$big32"
  row "seed, fresh server" 1 "$before1"
  row "seed, +$functions functions +$routes routes" 1 "$after1"
  row "big API: GET $(field sample_path | cut -d'?' -f1)" 1 "$big1"
  echo "ratio seed after/before: $(ratio "$after32" "$before32") at 32 conns, $(ratio "$after1" "$before1") at 1;" \
    "big API/seed after: $(ratio "$big32" "$after32") at 32, $(ratio "$big1" "$after1") at 1"
  echo "Portico RSS: fresh with the seed ${rss_fresh} MB; after deploying ${rss_deployed} MB;" \
    "after the runs ${rss_after} MB; restarted on the same data dir ${rss_restart} MB"
} | tee "$report"
echo "saved to $report" >&2
