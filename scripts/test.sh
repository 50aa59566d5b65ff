#!/usr/bin/env bash
# Runs every test of Portico. Installs what they need first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true

bash scripts/setup.sh
node22="$PWD/.tools/node22/node_modules/node/bin/node"

step() { printf '\n== %s\n' "$*" >&2; }

step "format"
cargo fmt --all -- --check
step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "unit and integration tests (Rust)"
cargo test --workspace --locked
step "fuzz targets, 10 s each (scripts/fuzz.sh; builds cargo-fuzz on a fresh machine)"
bash scripts/fuzz.sh 10
step "Node.js runtime client tests (Node 22, then the system Node)"
"$node22" --test runtimes/nodejs/test/*.test.mjs
if command -v node >/dev/null; then node --test runtimes/nodejs/test/*.test.mjs; fi
.venv/bin/python -m pytest -q runtimes/python/test_bootstrap.py  # the Python runtime client
step "end-to-end tests (AWS CLI, boto3, curl against a live server)"
cargo build -p portico --locked
PORTICO_BIN="$PWD/target/debug/portico" PORTICO_NODEJS22_BIN="$node22" \
  .venv/bin/python -m pytest -q tests/e2e "$@"
step "web console in headless Chromium (tests/console: playwright-core driving /usr/bin/chromium)"
PORTICO_BIN="$PWD/target/debug/portico" PORTICO_NODEJS22_BIN="$node22" \
  "$node22" --test --test-reporter=spec tests/console/*.test.mjs ||
  { echo "FAILED: the console's browser tests (tests/console; screenshots in target/console-screenshots/)" >&2; exit 1; }
step "benchmarks as smoke tests: each scenario briefly, every answer checked, no timing asserted (bench/README.md)"
# The debug build the end-to-end tests used: a smoke test checks answers, not speed.
export PORTICO_BIN="$PWD/target/debug/portico"
bash bench/hello.sh 1s 1
bash bench/environments.sh --quick
BENCH_ROUNDS=1 bash bench/scale.sh 1s 50 500
bash bench/control.sh 1s
