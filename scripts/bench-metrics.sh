#!/usr/bin/env bash
# Cost of the Prometheus metrics (issue 10; method: /work/shared/bench/METHOD.md).
#
#   scripts/bench-metrics.sh [RUNS]    (default 3; knobs: COUNT=1000000 PARTS=10000 SCRAPES=5)
#
# One release samsa-broker, the same build both ways: each run starts it once with
# `samsa.metrics.listener` unset (off) and once set (on), fresh log dir each time, and produces
# COUNT 100-byte records with rdkafka_performance: 1 partition acks=1, then 8 partitions acks=all
# (linger.ms=5). Broker pinned to CPU 0, client to CPU 1. Prints records/s and broker CPU-seconds
# per million records per mode, with medians. Then, with metrics on, it creates a topic of
# PARTS partitions and times SCRAPES scrapes of /metrics (median wall time, body size, broker
# CPU per scrape).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
RUNS="${1:-3}"; COUNT="${COUNT:-1000000}"; PARTS="${PARTS:-10000}"; SCRAPES="${SCRAPES:-5}"
RUN="$TOOLS/bench-metrics-run"
B0="taskset -c 0"; C1="taskset -c 1"

build_bench_tools
rm -rf "$RUN"; mkdir -p "$RUN"
ZK_PIN="$B0" start_zk "$RUN"
SPID=""
cleanup() { [ -z "$SPID" ] || kill -9 "$SPID" 2>/dev/null || true; kill "$ZKPID" 2>/dev/null || true; }
trap cleanup EXIT

# start_broker NAME on|off -> sets SPID, SAMSA, MP
start_broker() {
  local name=$1 mode=$2 sp
  sp=$(free_port); MP=$(free_port); SAMSA="127.0.0.1:$sp"
  cat > "$RUN/$name.properties" <<P
broker.id=1
listeners=PLAINTEXT://$SAMSA
log.dirs=$RUN/$name-logs
zookeeper.connect=127.0.0.1:$ZKP/$name
offsets.topic.replication.factor=1
P
  [ "$mode" = off ] || echo "samsa.metrics.listener=http://127.0.0.1:$MP" >> "$RUN/$name.properties"
  RUST_LOG=warn $B0 "$BIN" "$RUN/$name.properties" >"$RUN/$name.log" 2>&1 &
  SPID=$!
  wait_port "$sp"
}

stop_broker() {
  kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
}

# produce TOPIC PARTS ACKS -> "records/s cpu_s_per_M"
produce() {
  local topic=$1 parts=$2 acks=$3 part="-p 0" c0 c1 s e secs
  [ "$parts" = 1 ] || part=""
  c0=$(cpu_s "$SPID"); s=$(now)
  # shellcheck disable=SC2086
  $C1 "$PERF" -P -t "$topic" $part -b "$SAMSA" -s 100 -c "$COUNT" -a "$acks" -X linger.ms=5 -q \
    >"$RUN/perf.out" 2>&1 || { log "produce $topic failed: $(tail -2 "$RUN/perf.out")"; echo "nan nan"; return; }
  e=$(now); c1=$(cpu_s "$SPID")
  grep -q " 0 failed" "$RUN/perf.out" || log "produce $topic: $(grep -o '[0-9]* failed' "$RUN/perf.out" | head -1)"
  secs=$(calc "$e - $s")
  echo "$(calc "$COUNT / $secs") $(calc "($c1 - $c0) / ($COUNT / 1000000)")"
}

: > "$RUN/results"
rec() { echo "$1 $2" >> "$RUN/results"; log "run $r: $1 = $2"; }
for r in $(seq "$RUNS"); do
  for mode in off on; do
    start_broker "$mode-$r" "$mode"
    create_topic "$SAMSA" p1 1 1
    create_topic "$SAMSA" a8 8 1
    sync
    rec "$mode.produce.p1.acks1" "$(produce p1 1 1)"
    rec "$mode.produce.p8.acksall" "$(produce a8 8 -1)"
    stop_broker
  done
done

# One scrape with PARTS partitions hosted (and led) by the broker.
r=scrape
start_broker scrape on
# In topics of 1,000 partitions, with a generous timeout: the controller writes one state znode each.
python3 - "$SAMSA" "$PARTS" <<'PY'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
boot, parts = sys.argv[1], int(sys.argv[2])
a = AdminClient({"bootstrap.servers": boot, "socket.timeout.ms": 900000})
sizes = [1000] * (parts // 1000) + ([parts % 1000] if parts % 1000 else [])
topics = [NewTopic(f"wide-{i}", n, 1) for i, n in enumerate(sizes)]
for _, fu in a.create_topics(topics, operation_timeout=600, request_timeout=600).items():
    fu.result(900)
deadline = time.time() + 900
while time.time() < deadline:
    md = a.list_topics(timeout=30)
    led = sum(1 for t, m in md.topics.items() if t.startswith("wide-")
              for p in m.partitions.values() if p.leader >= 0)
    if led == parts:
        break
    time.sleep(1)
else:
    sys.exit(f"only {led} of {parts} partitions have a leader")
PY
c0=$(cpu_s "$SPID")
scrape=$(python3 - "http://127.0.0.1:$MP/metrics" "$SCRAPES" <<'PY'
import statistics, sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
times, size = [], 0
for _ in range(n):
    t = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=60).read()
    times.append(time.perf_counter() - t)
    size = len(body)
print(f"{statistics.median(times) * 1000:.1f} {size}")
PY
)
c1=$(cpu_s "$SPID")
rec "scrape.$PARTS.partitions" "$scrape $(calc "($c1 - $c0) / $SCRAPES")"
stop_broker

tidy() { awk '{ if ($1 == "nan") print $1; else if ($1 >= 100) printf "%.0f\n", $1; else printf "%.3g\n", $1 }'; }
echo
echo "| measure | column 1 | column 2 | column 3 |"
echo "|---|---|---|---|"
cut -d' ' -f1 "$RUN/results" | sort -u | while read -r m; do
  cols=""
  for c in 2 3 4; do
    v=$(grep "^$m " "$RUN/results" | cut -d' ' -f$c | grep -v '^$' | median | tidy || true)
    cols="$cols | ${v:-}"
  done
  echo "| $m$cols |"
done
echo
echo "columns: produce = records/s, broker CPU-s per 1M records; scrape = median ms per scrape,"
echo "body bytes, broker CPU-s per scrape. Raw per-run lines: $RUN/results"
