#!/usr/bin/env bash
# Execution-environment figures (cold start vs `node -e 0`, warm Invoke latency,
# scale-out, resident memory), measured in one run. See bench/environments.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true
bash scripts/setup.sh
cargo build --release -p portico --locked >&2
mkdir -p bench/results
.venv/bin/python bench/environments.py "$PWD/target/release/portico" \
  "$PWD/.tools/node22/node_modules/node/bin/node" | tee "bench/results/environments-$(date -u +%Y%m%dT%H%M%SZ).txt"
