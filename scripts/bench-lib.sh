# Shared helpers of the benchmark scripts (sourced, not run). Method: /work/shared/bench/METHOD.md.
# Expects ROOT to be set to the repository root.

TOOLS="$ROOT/.tools"
PERF="$TOOLS/librdkafka/examples/rdkafka_performance"
# SAMSA_BENCH_BIN measures another build (e.g. an older commit's, for an A/B comparison).
BIN="${SAMSA_BENCH_BIN:-$ROOT/target/release/samsa-broker}"
mkdir -p "$TOOLS"

log() { echo "[bench] $*" >&2; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
median() { sort -g | awk '{a[NR]=$1} END{if (NR==0) print "nan"; else print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# percentile P (0-100) of the numbers on stdin
pct() { sort -g | awk -v p="$1" '{a[NR]=$1} END{i=int(NR*p/100); if(i<1)i=1; print a[i]}'; }
now() { date +%s.%N; }
# utime+stime of a process in seconds
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }
calc() { echo "$*" | bc -l; }

# Release broker and rdkafka_performance (built from the librdkafka source vendored in the
# crates.io package rdkafka-sys, which the integration tests already fetch).
build_bench_tools() {
  [ -n "${SAMSA_BENCH_BIN:-}" ] ||
    cargo build --release -p samsa-broker --bin samsa-broker --manifest-path "$ROOT/Cargo.toml" >&2
  if [ ! -x "$PERF" ]; then
    cargo fetch --manifest-path "$ROOT/Cargo.toml" >&2
    local src
    src=$(ls -d "$HOME"/.cargo/registry/src/*/rdkafka-sys-*/librdkafka | head -1)
    log "building rdkafka_performance from $src"
    rm -rf "$TOOLS/librdkafka"; cp -r "$src" "$TOOLS/librdkafka"
    (cd "$TOOLS/librdkafka" && ./configure --disable-gssapi >/dev/null && make -j2 -C src >/dev/null 2>&1 \
       && make -C examples rdkafka_performance >/dev/null 2>&1)
  fi
}

# start_zk DIR -> sets ZKP (port) and ZKPID
start_zk() {
  mkdir -p "$1/zk"
  ZKP=$(free_port)
  printf 'tickTime=500\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n' \
    "$1/zk" "$ZKP" > "$1/zoo.cfg"
  ZOO_LOG_DIR="$1" ${ZK_PIN:-} /usr/share/zookeeper/bin/zkServer.sh start-foreground "$1/zoo.cfg" >"$1/zk.log" 2>&1 &
  ZKPID=$!
  wait_port "$ZKP"
}

wait_port() { # port
  for _ in $(seq 120); do
    python3 -c "import socket;socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
    sleep 0.5
  done
  log "nothing listens on port $1"; return 1
}

# create_topic BOOTSTRAP TOPIC PARTITIONS RF [k=v ...]
create_topic() {
  python3 - "$@" <<'PY'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
boot, topic, parts, rf = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cfg = dict(kv.split("=", 1) for kv in sys.argv[5:])
a = AdminClient({"bootstrap.servers": boot})
for _, fu in a.create_topics([NewTopic(topic, parts, rf, config=cfg)]).items():
    fu.result(30)
# Wait until every partition has a leader in the metadata.
for _ in range(100):
    md = a.list_topics(topic, timeout=5).topics.get(topic)
    if md and not md.error and len(md.partitions) == parts and all(p.leader >= 0 for p in md.partitions.values()):
        break
    time.sleep(0.1)
PY
}
