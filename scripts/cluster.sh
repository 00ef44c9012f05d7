#!/usr/bin/env bash
# Start / stop a local Samsa cluster: one ZooKeeper + N samsa-broker processes.
#
#   scripts/cluster.sh [start] [-n N] [--release]   start (default N=1); prints how to connect
#   scripts/cluster.sh stop                         stop brokers (SIGTERM) then ZooKeeper
#   scripts/cluster.sh status                       show what is running
#
# Everything lives under ./data/ (gitignored): data/zk/, data/broker-<id>/{server.properties,logs/,broker.log}.
# Ports: ZooKeeper 2181 and brokers 9092.. when free, otherwise the next free ones (ZK_PORT / BROKER_PORT
# override the starting points). Data survives stop/start; `rm -rf data` for a fresh cluster.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/data"
cmd="start"
n=1
profile="debug"
while [ $# -gt 0 ]; do
  case "$1" in
    start|stop|status) cmd="$1" ;;
    -n|--brokers) n="$2"; shift ;;
    --release) profile="release" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "[cluster] $*"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port_from() { local p="$1"; while port_busy "$p"; do p=$((p + 1)); done; echo "$p"; }
wait_port() { # port deadline_seconds pidfile
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    port_busy "$1" && return 0
    alive "$3" || return 1
    sleep 0.2
  done
  return 1
}

stop_all() {
  local f
  for f in "$DATA"/broker-*/pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then log "stopping broker $(basename "$(dirname "$f")") (pid $(cat "$f"))"; kill -TERM "$(cat "$f")"; fi
  done
  for f in "$DATA"/broker-*/pid; do
    [ -e "$f" ] || continue
    local end=$((SECONDS + 30))
    while alive "$f" && [ $SECONDS -lt $end ]; do sleep 0.2; done
    if alive "$f"; then log "broker pid $(cat "$f") did not stop in 30 s, killing"; kill -KILL "$(cat "$f")"; fi
    rm -f "$f"
  done
  if alive "$DATA/zk/pid"; then
    log "stopping ZooKeeper (pid $(cat "$DATA/zk/pid"))"
    kill -TERM "$(cat "$DATA/zk/pid")"
    local end=$((SECONDS + 15))
    while alive "$DATA/zk/pid" && [ $SECONDS -lt $end ]; do sleep 0.2; done
    alive "$DATA/zk/pid" && kill -KILL "$(cat "$DATA/zk/pid")"
  fi
  rm -f "$DATA/zk/pid" "$DATA/cluster.env"
}

status() {
  if alive "$DATA/zk/pid"; then log "ZooKeeper running (pid $(cat "$DATA/zk/pid"))"; else log "ZooKeeper not running"; fi
  local f
  for f in "$DATA"/broker-*/pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then log "$(basename "$(dirname "$f")") running (pid $(cat "$f"))"; fi
  done
  [ -f "$DATA/cluster.env" ] && cat "$DATA/cluster.env"
  return 0
}

case "$cmd" in
  stop) stop_all; exit 0 ;;
  status) status; exit 0 ;;
esac

if alive "$DATA/zk/pid"; then
  log "a cluster is already running; 'scripts/cluster.sh stop' first"
  status
  exit 1
fi

# ZooKeeper (and the rest of the tools) if missing.
if [ ! -x /usr/share/zookeeper/bin/zkServer.sh ]; then
  "$ROOT/scripts/setup.sh"
fi

log "building samsa-broker ($profile)"
if [ "$profile" = release ]; then
  cargo build --release -p samsa-broker --manifest-path "$ROOT/Cargo.toml"
else
  cargo build -p samsa-broker --manifest-path "$ROOT/Cargo.toml"
fi
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$target_dir/$profile/samsa-broker"
[ -x "$BIN" ] || { echo "no broker binary at $BIN" >&2; exit 1; }

mkdir -p "$DATA/zk/data"
zk_port="$(free_port_from "${ZK_PORT:-2181}")"
cat > "$DATA/zk/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$DATA/zk/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
CFG
log "starting ZooKeeper on 127.0.0.1:$zk_port"
(
  cd "$DATA/zk"
  SERVER_JVMFLAGS="-Xmx256m" ZOO_LOG_DIR="$DATA/zk" \
    setsid nohup /usr/share/zookeeper/bin/zkServer.sh start-foreground "$DATA/zk/zoo.cfg" \
    >"$DATA/zk/zookeeper.log" 2>&1 </dev/null &
  echo $! >"$DATA/zk/pid"
)
wait_port "$zk_port" 30 "$DATA/zk/pid" || { log "ZooKeeper did not start; see $DATA/zk/zookeeper.log"; exit 1; }

zk_connect="127.0.0.1:$zk_port/samsa"
rf=$(( n < 3 ? n : 3 ))
next_port="${BROKER_PORT:-9092}"
bootstrap=""
for id in $(seq 1 "$n"); do
  dir="$DATA/broker-$id"
  mkdir -p "$dir/logs"
  port="$(free_port_from "$next_port")"
  next_port=$((port + 1))
  cat > "$dir/server.properties" <<PROPS
broker.id=$id
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
log.dirs=$dir/logs
zookeeper.connect=$zk_connect
zookeeper.session.timeout.ms=18000
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  log "starting broker $id on 127.0.0.1:$port"
  (
    cd "$dir"
    RUST_LOG="${RUST_LOG:-info}" setsid nohup "$BIN" "$dir/server.properties" >"$dir/broker.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  )
  wait_port "$port" 60 "$dir/pid" || { log "broker $id did not start; see $dir/broker.log"; tail -20 "$dir/broker.log"; exit 1; }
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$port"
done

cat > "$DATA/cluster.env" <<ENV
BOOTSTRAP_SERVERS=$bootstrap
ZOOKEEPER_CONNECT=$zk_connect
ENV
cat <<INFO

Samsa cluster is up ($n broker(s)).
  bootstrap.servers = $bootstrap
  zookeeper         = $zk_connect   (chroot /samsa; inspect with: /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:$zk_port)
  logs              = $DATA/broker-<id>/broker.log, $DATA/zk/zookeeper.log
Try:
  kcat -b $bootstrap -L
  echo hello | kcat -b $bootstrap -P -t demo && kcat -b $bootstrap -C -t demo -e
Stop with: scripts/cluster.sh stop
INFO
