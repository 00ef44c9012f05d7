#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets with the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable
# rustc accept the -Z sanitizer flags cargo-fuzz passes (this machine has no nightly toolchain).
#
#   fuzz/run.sh [TARGET|all] [SECONDS]   default: all targets, 60 s each
#
# Targets: request (frame + header + body decoding), records (produce validation and fetch
# down-conversion of record bytes), frame_header (frame size and header only).
# Corpora grow in fuzz/corpus/<target>/ and crashes land in fuzz/artifacts/<target>/ (both
# gitignored). Reproduce a crash with: RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a TARGET ARTIFACT
# -a keeps debug assertions and overflow checks on: -O alone turns them off, and an i64
# overflow on a wire value is exactly the kind of crash the targets are here to find.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

target="${1:-all}"
secs="${2:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
if [ "$target" = all ]; then
  targets=(request records frame_header)
else
  targets=("$target")
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -a
for t in "${targets[@]}"; do
  echo "[fuzz] $t for ${secs}s" >&2
  mkdir -p "corpus/$t"
  cargo fuzz run -O -a "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1
done
