#!/usr/bin/env bash
# Runs Portico on the embedded store, with Node.js 22 for nodejs22.x functions.
# Installs Node 22 from the npm registry into .tools/ the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
node22=.tools/node22/node_modules/node/bin/node
if ! "$node22" --version 2>/dev/null | grep -q '^v22\.'; then
  echo "installing Node.js 22 into .tools/node22 (npm install node@22)" >&2
  npm install --silent --no-audit --no-fund --prefix .tools/node22 node@22 >&2
fi
cargo build --release -p portico >&2
export PORTICO_NODEJS22_BIN="${PORTICO_NODEJS22_BIN:-$PWD/$node22}"
exec target/release/portico serve "$@"
