#!/usr/bin/env bash
# Transaction benchmark (issue 8; method: /work/shared/bench/METHOD.md).
#
#   scripts/bench-txn.sh [RUNS]    (default 3; knobs: COUNT=200000 SMALL_COUNT=20000 LAT_TXNS=1000)
#
# For profiling: MODES (default "idem txn1000 txn10 lat100") picks the measures, BENCH_RUST_LOG
# (default warn) is the brokers' RUST_LOG, KEEP_BENCH_DATA=1 keeps the run dir and its logs.
#
# Sets everything up itself: release samsa-broker, its own ZooKeeper, three Samsa brokers, and
# the Java 3.9.1 client program scripts/TxnBench.java (jars from scripts/setup.sh). Topics have
# 3 partitions, replication factor 3; producers use acks=all, 100-byte records, linger.ms=5.
# Per run, in this order on fresh topics:
#   idem      idempotent producer, COUNT records                       -> records/s
#   txn1000   transactional producer, transactions of 1,000 records   -> records/s, txn/s
#   txn10     transactional producer, transactions of 10 records      -> records/s, txn/s
#   lat100    10-record transactions at 100 txn/s for LAT_TXNS txns, read by a read_committed
#             consumer in the same process                             -> p50, p99 (ms)
# Prints per-run lines and a table of medians; the data dirs are deleted at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
RUNS="${1:-3}"; COUNT="${COUNT:-200000}"; SMALL_COUNT="${SMALL_COUNT:-20000}"; LAT_TXNS="${LAT_TXNS:-1000}"
MODES="${MODES:-idem txn1000 txn10 lat100}"
RUN="${BENCH_RUN_DIR:-$ROOT/target/bench-txn-run}"
JARS="$TOOLS/jars"

[ -n "${SAMSA_BENCH_BIN:-}" ] ||
  cargo build --release -p samsa-broker --bin samsa-broker --manifest-path "$ROOT/Cargo.toml" >&2
[ -f "$JARS/kafka-clients.jar" ] || { log "$JARS/kafka-clients.jar missing: run scripts/setup.sh"; exit 1; }

rm -rf "$RUN"; mkdir -p "$RUN/classes"
javac -cp "$JARS/*" -d "$RUN/classes" "$ROOT/scripts/TxnBench.java"
bench() { java -XX:+UseSerialGC -cp "$RUN/classes:$JARS/*" TxnBench "$@" 2>>"$RUN/client.log"; }

start_zk "$RUN"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  kill "$ZKPID" 2>/dev/null || true
  [ -n "${KEEP_BENCH_DATA:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT
BOOT=""
for id in 1 2 3; do
  port=$(free_port)
  cat > "$RUN/server-$id.properties" <<P
broker.id=$id
listeners=PLAINTEXT://127.0.0.1:$port
log.dirs=$RUN/logs-$id
zookeeper.connect=127.0.0.1:$ZKP/bench
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
P
  RUST_LOG="${BENCH_RUST_LOG:-warn}" "$BIN" "$RUN/server-$id.properties" >"$RUN/broker-$id.log" 2>&1 &
  PIDS+=("$!")
  BOOT="${BOOT:+$BOOT,}127.0.0.1:$port"
  wait_port "$port"
done
# Let the three brokers register and see each other before RF-3 topics are created.
for _ in $(seq 60); do
  n=$(python3 -c "from confluent_kafka.admin import AdminClient as A;print(len(A({'bootstrap.servers':'$BOOT'}).list_topics(timeout=5).brokers))" 2>/dev/null || echo 0)
  [ "$n" = 3 ] && break
  sleep 0.5
done

: > "$RUN/results"
rec() { echo "$1 $2" >> "$RUN/results"; log "run $r: $1 = $2"; }
for r in $(seq "$RUNS"); do
  for t in idem t1000 t10 lat; do create_topic "$BOOT" "$t-$r" 3 3; done
  for m in $MODES; do
    case $m in
      idem) rec idem "$(bench idem "$BOOT" "idem-$r" "$COUNT")" ;;
      txn1000) rec txn1000 "$(bench txn "$BOOT" "t1000-$r" "$COUNT" 1000)" ;;
      txn10) rec txn10 "$(bench txn "$BOOT" "t10-$r" "$SMALL_COUNT" 10)" ;;
      lat100) rec lat100 "$(bench lat "$BOOT" "lat-$r" "$LAT_TXNS" 100)" ;;
      *) log "unknown mode $m"; exit 1 ;;
    esac
  done
done

tidy() { awk '{ if ($1 >= 100) printf "%.0f\n", $1; else printf "%.3g\n", $1 }'; }
echo
echo "| measure | column 1 | column 2 |"
echo "|---|---|---|"
for m in $MODES; do
  c1=$(grep "^$m " "$RUN/results" | cut -d' ' -f2 | median | tidy)
  c2=$(grep "^$m " "$RUN/results" | cut -d' ' -f3 | grep -v '^$' | median | tidy || true)
  echo "| $m | $c1 | ${c2:-} |"
done
if grep -q "^idem " "$RUN/results" && grep -q "^txn1000 " "$RUN/results"; then
  i=$(grep "^idem " "$RUN/results" | cut -d' ' -f2 | median)
  t=$(grep "^txn1000 " "$RUN/results" | cut -d' ' -f2 | median)
  echo
  echo "txn1000 / idem = $(calc "$t / $i" | tidy)"
fi
echo "columns: idem/txn = records/s, committed txn/s; lat100 = read_committed end-to-end p50, p99 (ms)."
grep . "$RUN/results" | sed 's/^/raw: /'
