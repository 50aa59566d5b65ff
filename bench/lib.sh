# Shared by the bench/*.sh scripts (sourced, from the repository root): what each needs
# before it measures anything.
#   - scripts/setup.sh: wrk, Node.js 22, the Python venv;
#   - PORTICO_BIN: the binary to measure (given, or target/release/portico built now);
#   - node22: the Node.js 22 that runs functions and baselines;
#   - BENCH_JUDGE: "no" for a debug build, whose figures are a smoke test, not a measurement.
bash scripts/setup.sh
if [ -z "${PORTICO_BIN:-}" ]; then
  cargo build --release -p portico --locked >&2
  PORTICO_BIN="$PWD/target/release/portico"
fi
case "$PORTICO_BIN" in */debug/*) BENCH_JUDGE=no ;; *) BENCH_JUDGE=yes ;; esac
export PORTICO_BIN BENCH_JUDGE
node22="$PWD/.tools/node22/node_modules/node/bin/node"

# A scratch dir and the background processes started into `pids`, both gone at exit.
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for_line() { # file -> URL printed in its "listening on" line
  for _ in $(seq 300); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$1" | head -1 || true)"
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.05
  done
  echo "server did not start: $(cat "$1")" >&2; exit 1
}
