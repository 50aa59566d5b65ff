#!/usr/bin/env bash
# Rebuilds console/static/vendor/codemirror.js from the pinned packages in package-lock.json.
# Needs Node.js (>= 18) and npm and the npm registry; Portico itself never runs this: the
# bundle is committed, so the binary builds with no Node tooling.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
out="$here/../static/vendor/codemirror.js"
mkdir -p "$(dirname "$out")"
./node_modules/.bin/esbuild entry.js \
  --bundle --format=esm --minify --target=es2020 --legal-comments=none \
  --outfile="$out"
echo "wrote $out ($(wc -c <"$out") bytes)"
