#!/usr/bin/env bash
# Execution-environment figures (resident memory against a bare node server, cold start
# vs `node -e 0`, warm Invoke latency, scale-out 0 -> 50 and 0 -> 100), measured in one
# run. See bench/environments.py. Loopback only, bounded in time.
#
# Usage: bench/environments.sh [--quick] [-- SERVE_ARGS...]
#   --quick        smoke run (a few samples, 0 -> 10): checks every answer, ~15 s
#   SERVE_ARGS     extra `portico serve` options, e.g. -- --warm-wait off
#   PORTICO_BIN=path  run that binary instead of building target/release/portico
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
quick=()
if [ "${1:-}" = --quick ]; then quick=(--quick); shift; fi
if [ "${1:-}" = -- ]; then shift; fi
source bench/lib.sh  # PORTICO_BIN, node22
mkdir -p bench/results
name=environments; [ ${#quick[@]} -eq 0 ] || name=environments-quick
.venv/bin/python bench/environments.py "${quick[@]}" "$PORTICO_BIN" \
  "$node22" -- "$@" \
  | tee "bench/results/$name-$(date -u +%Y%m%dT%H%M%SZ).txt"
