#!/usr/bin/env bash
# Installs what the tests and benchmarks need, into the checkout only:
#   .tools/node22  Node.js 22 from the npm registry (the nodejs22.x runtime)
#   .venv          Python venv with the AWS CLI, boto3 and pytest (tests/e2e/requirements.txt)
#   /usr/bin/aws   the AWS CLI v2, Debian's awscli package (PyPI has only v1; `aws logs tail` is v2's)
#   wrk            the HTTP load generator of bench/*.sh (Debian's wrk package)
#   /usr/bin/chromium  Debian's chromium, the browser of the console's tests (tests/console)
#   tests/console/node_modules  playwright-core, pinned in tests/console/package-lock.json (npm ci;
#                  it drives /usr/bin/chromium: no browser is ever downloaded)
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

sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
apt_install() { # PACKAGE: from Debian, updating the package lists only when needed
  $sudo apt-get install -y -q --no-install-recommends "$1" >&2 ||
    { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends "$1" >&2; }
}

if ! /usr/bin/aws --version 2>/dev/null | grep -q '^aws-cli/2\.'; then
  echo "setup: installing the AWS CLI v2 (Debian's awscli)" >&2
  apt_install awscli
fi

if ! command -v zip >/dev/null; then
  echo "setup: installing zip (the tutorial packages its function with it)" >&2
  apt_install zip
fi

if ! command -v wrk >/dev/null; then
  echo "setup: installing wrk (Debian's wrk)" >&2
  apt_install wrk
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium (Debian's chromium, for tests/console)" >&2
  apt_install chromium
fi

# npm ci from the lock file; the copy of the lock file in node_modules says it is done.
stamp=tests/console/node_modules/.portico-package-lock.json
if ! cmp -s tests/console/package-lock.json "$stamp"; then
  echo "setup: installing tests/console's packages (playwright-core) with npm ci" >&2
  (cd tests/console && npm ci --silent --no-audit --no-fund >&2)
  cp tests/console/package-lock.json "$stamp"
fi
