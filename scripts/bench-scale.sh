#!/usr/bin/env bash
# Partition-scale benchmark (issue 12).
#
#   scripts/bench-scale.sh [N ...]    (default: 1000 10000; e.g. `scripts/bench-scale.sh 30000`)
#
# For each N: ZooKeeper and 3 release brokers started afresh (the e2e fixtures), N partitions
# as topics of PER_TOPIC (100) partitions at RF 3, then the measurements of
# integration-tests/examples/scale_bench.rs (topic creation with the Java Admin, full Metadata,
# idle CPU and memory per replica, produce + consume of every partition with librdkafka,
# Metadata's effect on a producer's p99, controlled shutdown with a producer's longest stall,
# clean restart, controller failover after kill -9, restart after kill -9). Prints `RESULT`
# lines per N.
# Knobs: PER_TOPIC, CREATE_BATCH, IDLE_SECS, SESSION_MS, RECORDS (passed through), NOFILE;
# SAMSA_BENCH_BIN measures another broker build (A/B).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${SAMSA_BENCH_BIN:-$ROOT/target/release/samsa-broker}"
[ -n "${SAMSA_BENCH_BIN:-}" ] || cargo build --release -p samsa-broker --bin samsa-broker >&2
# The client side (producer, Metadata polls) is the debug example: only the broker is timed.
cargo build -p samsa-integration-tests --example scale_bench >&2
# One descriptor per segment: 30,000 replicas per broker need more than a default hard
# RLIMIT_NOFILE. Kafka's guidance is 100,000+; raise the hard limit where allowed (root),
# the brokers raise their soft limit to it and log so. Index maps are lazy (see
# docs/design.md), so vm.max_map_count is left at the kernel default on purpose.
ulimit -Hn "${NOFILE:-200000}" 2>/dev/null || echo "cannot raise the hard open-files limit" >&2
echo "vm.max_map_count=$(cat /proc/sys/vm/max_map_count) nofile(hard)=$(ulimit -Hn) load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in "${@:-1000 10000}"; do
  for one in $n; do
    echo "=== PARTITIONS=$one broker=$BIN"
    PARTITIONS="$one" SAMSA_BROKER_BIN="$BIN" "$ROOT/target/debug/examples/scale_bench"
  done
done
