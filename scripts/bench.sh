#!/usr/bin/env bash
# Replication benchmark (issue #4, method: /work/shared/bench/METHOD.md).
#
#   scripts/bench.sh [RUNS]     (default 3 runs; knobs: COUNT=1000000 RATE_LAT=1000 SESSION_MS=6000)
#
# Builds samsa-broker --release and rdkafka_performance (from the vendored librdkafka in
# ~/.cargo/registry/src/*/rdkafka-sys-*/librdkafka, into .tools/librdkafka), starts its own
# ZooKeeper + 3 brokers on free ports under .tools/bench-run, then per run, alternating A/B:
#   A = RF=1 topic, acks=all;  B = RF=3 topic, acks=all, min.insync.replicas=2
# 100-byte records: throughput (records/s), p99 produce latency (-r RATE_LAT, linger 0),
# broker CPU-seconds (utime+stime of all brokers over the run). Finally kill -9 of an RF=3
# leader and the time until the first successful acks=all produce on the new leader.
# Prints medians; paste them into docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"; COUNT="${COUNT:-1000000}"; RATE_LAT="${RATE_LAT:-1000}"; SESSION_MS="${SESSION_MS:-6000}"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
RUN="$TOOLS/bench-run"
build_bench_tools
rm -rf "$RUN"; mkdir -p "$RUN"
start_zk "$RUN"
declare -A PID PORT
cleanup() { for id in 1 2 3; do [ -n "${PID[$id]:-}" ] && kill -9 "${PID[$id]}" 2>/dev/null || true; done; kill "$ZKPID" 2>/dev/null || true; }
trap cleanup EXIT

start_broker() { # id
  local id=$1 d="$RUN/b$1"; mkdir -p "$d"
  [ -n "${PORT[$id]:-}" ] || PORT[$id]=$(free_port)
  cat > "$d/server.properties" <<P
broker.id=$id
listeners=PLAINTEXT://127.0.0.1:${PORT[$id]}
log.dirs=$d/logs
zookeeper.connect=127.0.0.1:$ZKP/bench
zookeeper.session.timeout.ms=$SESSION_MS
offsets.topic.replication.factor=3
P
  RUST_LOG=warn "$BIN" "$d/server.properties" >>"$d/broker.log" 2>&1 &
  PID[$id]=$!
}
for id in 1 2 3; do start_broker "$id"; done
BOOT="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]},127.0.0.1:${PORT[3]}"
for i in $(seq 120); do kcat -b "$BOOT" -L -m 2 2>/dev/null | grep -q "3 brokers" && break; sleep 0.5; done

create() { # topic rf
  local isr=2; [ "$2" != 1 ] || isr=1
  create_topic "$BOOT" "$1" 1 "$2" "min.insync.replicas=$isr"
}
cpu() { local s=0; for id in 1 2 3; do s=$((s + $(awk '{print $14+$15}' /proc/${PID[$id]}/stat))); done; echo "$s"; }
tick=$(getconf CLK_TCK)

one() { # label rf run -> "tput p99 cpu"
  local t="t-$1-$3"; create "$t" "$2"
  local c0; c0=$(cpu); local s; s=$(date +%s.%N)
  "$PERF" -P -t "$t" -p 0 -b "$BOOT" -s 100 -c "$COUNT" -a -1 -X linger.ms=5 -q >/dev/null 2>&1
  local e; e=$(date +%s.%N); local c1; c1=$(cpu)
  sync  # let the throughput run's writeback finish before measuring latency
  "$PERF" -P -t "$t" -p 0 -b "$BOOT" -s 100 -c 20000 -r "$RATE_LAT" -a -1 -X linger.ms=0 -l -A "$RUN/lat-$t.txt" -q >/dev/null 2>&1
  local p99; p99=$(sort -g "$RUN/lat-$t.txt" | awk '{a[NR]=$1} END{print a[int(NR*0.99)]}')
  echo "$(echo "$COUNT / ($e - $s)" | bc -l) $p99 $(echo "($c1 - $c0) / $tick" | bc -l)"
}
: > "$RUN/A"; : > "$RUN/B"
for r in $(seq "$RUNS"); do
  one rf1 1 "$r" >> "$RUN/A"; one rf3 3 "$r" >> "$RUN/B"; log "run $r: A=$(tail -1 "$RUN/A") B=$(tail -1 "$RUN/B")"
done
ta=$(cut -d' ' -f1 "$RUN/A" | median); tb=$(cut -d' ' -f1 "$RUN/B" | median)
echo "RF=1 acks=all: median $ta rec/s, p99 $(cut -d' ' -f2 "$RUN/A" | median) us, broker CPU $(cut -d' ' -f3 "$RUN/A" | median) s"
echo "RF=3 acks=all min.isr=2: median $tb rec/s, p99 $(cut -d' ' -f2 "$RUN/B" | median) us, broker CPU $(cut -d' ' -f3 "$RUN/B" | median) s"
echo "ratio RF3/RF1: $(echo "$tb / $ta" | bc -l)"

# Failover: kill -9 the leader of an RF=3 topic; time to the first acknowledged produce.
create failover 3
leader=$(kcat -b "$BOOT" -L -t failover 2>/dev/null | sed -n 's/.*partition 0, leader \([0-9]*\).*/\1/p' | head -1)
live=$(for id in 1 2 3; do [ "$id" != "$leader" ] && printf '127.0.0.1:%s,' "${PORT[$id]}"; done)
t0=$(date +%s.%N); kill -9 "${PID[$leader]}"; unset "PID[$leader]"
until echo x | kcat -b "${live%,}" -P -t failover -p 0 -X acks=all -X message.timeout.ms=2000 2>/dev/null; do :; done
echo "failover (kill -9 leader -> first acked produce): $(echo "$(date +%s.%N) - $t0" | bc -l) s (session timeout ${SESSION_MS} ms)"
