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
# committed), so later local runs go on from there.
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

# Run straight from the binaries, as many at a time as there are cores (libFuzzer uses one).
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
mkdir -p target/logs
run() {
  local t=$1 log="target/logs/$1.log"
  mkdir -p "corpus/$t" "artifacts/$t"
  if ! "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    "corpus/$t" "seeds/$t" >"$log" 2>&1; then
    grep -av '^#[0-9]' "$log" | tail -n 60 >&2
    echo "fuzz: $t FAILED: log in fuzz/$log, input in fuzz/artifacts/$t/;" \
      "replay with (cd fuzz && $bin/$t artifacts/$t/FILE)" >&2
    return 1
  fi
  local runs
  runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz: $t ok: $runs executions in ${seconds}s, corpus $(find "corpus/$t" -type f | wc -l) inputs" >&2
}
parallel=${FUZZ_JOBS:-$(nproc)}
failed=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || failed=1; done
  run "$t" &
done
while [ -n "$(jobs -rp)" ]; do wait -n || failed=1; done
exit "$failed"
