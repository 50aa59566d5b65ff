#!/usr/bin/env bash
# Installs what the tests and benchmarks need, into the checkout only:
#   .tools/node22  Node.js 22 from the npm registry (the nodejs22.x runtime)
#   .venv          Python venv with the AWS CLI, boto3 and pytest (tests/e2e/requirements.txt)
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

node22=.tools/node22/node_modules/node/bin/node
if ! "$node22" --version 2>/dev/null | grep -q '^v22\.'; then
  echo "setup: installing Node.js 22 into .tools/node22" >&2
  npm install --silent --no-audit --no-fund --prefix .tools/node22 node@22 >&2
fi

stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s tests/e2e/requirements.txt "$stamp"; then
  echo "setup: creating .venv with tests/e2e/requirements.txt" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt >&2
  cp tests/e2e/requirements.txt "$stamp"
fi
