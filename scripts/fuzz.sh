#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS (default 20); fails
# on the first crash, leaving the input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (targets: cargo fuzz list, in fuzz/: route_key,
#                                               event_v2, event_v1, zip_extract, sigv4)
#
# Targets run as many at a time as there are cores, so on a 2-core CI runner six targets
# of 10 s take three rounds, as five did.
#
# Runs on the stable toolchain: targets are built without a sanitizer (Portico is safe
# Rust; -Zsanitizer needs nightly). FUZZ_SANITIZER=address builds with ASan anyway,
# through RUSTC_BOOTSTRAP=1, for longer local runs. Each target starts from its committed
# seeds (fuzz/seeds/<target>) and keeps what it finds in fuzz/corpus/<target> (not
# committed; FUZZ_CORPUS_DIR moves the whole tree), so later local runs go on from there.
#
# A corpus only grows (libFuzzer writes every input that adds a feature, and never
# deletes one), and a run first replays all of it: at 10k+ inputs a 10 s run did nothing
# else. So a corpus of more than FUZZ_CORPUS_MAX inputs (default 1000) is first
# minimised into a fresh directory: the smallest set of its inputs that still covers
# every edge it covers (-set_cover_merge=1 -use_counters=0: hit counts are not kept,
# the run finds them again in seconds). The merge is not counted in SECONDS. A fresh
# machine (seeds only, as on CI) merges nothing.
#
# At the end it prints a line per target: executions, new inputs, corpus size.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
shift || true

cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  # Into ~/.cargo/bin. A debug build is enough (it only drives cargo) and builds faster.
  echo "fuzz: installing cargo-fuzz $cargo_fuzz_version" >&2
  cargo install --quiet --locked --debug --version "$cargo_fuzz_version" cargo-fuzz
fi

sanitizer=${FUZZ_SANITIZER:-none}
if [ "$sanitizer" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi
# 16 codegen units and opt-level 1 (Cargo.toml): half the build time of cargo-fuzz's
# defaults, about the same executions per second.
flags=(--sanitizer "$sanitizer" --codegen-units 16)

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
echo "fuzz: building ${targets[*]}" >&2
cargo fuzz build "${flags[@]}"

# Run straight from the binaries (cargo builds them under CARGO_TARGET_DIR when set), as
# many at a time as there are cores (libFuzzer uses one).
bin="${CARGO_TARGET_DIR:-target}/$(rustc -vV | sed -n 's/^host: //p')/release"
corpus_root=${FUZZ_CORPUS_DIR:-corpus}
corpus_max=${FUZZ_CORPUS_MAX:-1000}
logs=target/logs
mkdir -p "$logs"
rm -f "$logs"/*.summary

files() { find "$1" -type f | wc -l; }
stat_of() { grep -ao "stat::$1: *[0-9]*" "$2" | grep -o '[0-9]*$' || echo '?'; }

# Replaces corpus dir $2 of target $1 by its minimal edge-covering subset.
minimise() {
  local t=$1 dir=$2 before fresh="$2.merging" log="$logs/$1.merge.log"
  before=$(files "$dir")
  rm -rf "$fresh" && mkdir -p "$fresh"
  if "$bin/$t" -set_cover_merge=1 -use_counters=0 -timeout=30 "$fresh" "$dir" >"$log" 2>&1; then
    rm -rf "$dir" && mv "$fresh" "$dir"
    echo "fuzz: $t: corpus minimised from $before to $(files "$dir") inputs" >&2
  else
    # A failed merge costs nothing but time: the corpus is kept as it was.
    rm -rf "$fresh"
    echo "fuzz: $t: minimising the corpus failed (log in fuzz/$log); kept its $before inputs" >&2
  fi
}

run() {
  local t=$1 log="$logs/$1.log" dir="$corpus_root/$1"
  mkdir -p "$dir" "artifacts/$t"
  if [ "$(files "$dir")" -gt "$corpus_max" ]; then minimise "$t" "$dir"; fi
  if ! "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    "$dir" "seeds/$t" >"$log" 2>&1; then
    grep -av '^#[0-9]' "$log" | tail -n 60 >&2
    echo "fuzz: $t FAILED: log in fuzz/$log, input in fuzz/artifacts/$t/;" \
      "replay with (cd fuzz && $bin/$t artifacts/$t/FILE)" >&2
    printf '%-12s %12s %9s %9s %8s  CRASHED\n' "$t" "$(stat_of number_of_executed_units "$log")" \
      "$(stat_of new_units_added "$log")" "$(files "$dir")" "$(du -sh "$dir" | cut -f1)" >"$logs/$t.summary"
    return 1
  fi
  printf '%-12s %12s %9s %9s %8s\n' "$t" "$(stat_of number_of_executed_units "$log")" \
    "$(stat_of new_units_added "$log")" "$(files "$dir")" "$(du -sh "$dir" | cut -f1)" >"$logs/$t.summary"
  echo "fuzz: $t ok" >&2
}
parallel=${FUZZ_JOBS:-$(nproc)}
failed=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || failed=1; done
  run "$t" &
done
while [ -n "$(jobs -rp)" ]; do wait -n || failed=1; done

{
  case $corpus_root in /*) where=$corpus_root ;; *) where=fuzz/$corpus_root ;; esac
  echo "fuzz: ${seconds}s per target; executions, new inputs (libFuzzer's new_units_added), corpus in $where/<target>"
  printf '%-12s %12s %9s %9s %8s\n' target executions new corpus size
  for t in "${targets[@]}"; do cat "$logs/$t.summary" 2>/dev/null || printf '%-12s (no result)\n' "$t"; done
} >&2
exit "$failed"
