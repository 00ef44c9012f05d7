#!/usr/bin/env bash
# Security benchmark (issue #9, method: /work/shared/bench/METHOD.md).
#
#   scripts/bench-security.sh [RUNS]   (default 3; knobs: COUNT=1000000 ACL_RUNS=5 CONN_SECONDS=10)
#
# Builds samsa-broker --release and rdkafka_performance with SSL and SASL (from the librdkafka
# source vendored in the crates.io package rdkafka-sys, into .tools/librdkafka), makes a CA and
# a broker certificate with openssl, and starts under .tools/bench-sec its own ZooKeeper and
#   broker A: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners (SCRAM-SHA-512), no authorizer;
#   broker B: AclAuthorizer with 2,000 unrelated ACLs on 1,000 resource patterns plus the ones the
#   benchmark client needs (inter-broker traffic as the super user admin over SASL PLAIN).
# 1. Per run, in rotating order over the four protocols of broker A: rdkafka_performance
#    produces COUNT 100-byte records to a fresh 1-partition topic (acks=all, linger 5 ms), then
#    consumes them from the beginning. Records/s (rdkafka_performance's own figure) and broker
#    CPU-seconds per million records (utime+stime of the broker process over the phase).
# 2. ACL cost: ACL_RUNS alternating PLAINTEXT produce runs on broker A (no authorizer) and
#    broker B (ACLs loaded); broker CPU-seconds per million records.
# 3. New connections per second on broker A's SSL (handshake + ApiVersions) and SASL_SSL
#    (handshake + SCRAM-SHA-512) listeners, 2 client processes, with broker CPU-ms per connection.
# Prints medians and the ratios; paste them into docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-3}"; COUNT="${COUNT:-1000000}"; ACL_RUNS="${ACL_RUNS:-5}"; CONN_SECONDS="${CONN_SECONDS:-10}"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
RUN="$TOOLS/bench-sec"
build_bench_tools
grep -q '^#define WITH_SSL 1' "$TOOLS/librdkafka/config.h" &&
  grep -q '^#define WITH_SASL_SCRAM 1' "$TOOLS/librdkafka/config.h" || {
  log "$PERF was built without SSL/SCRAM (install libssl-dev, then rm -rf $TOOLS/librdkafka)"; exit 1; }
rm -rf "$RUN"; mkdir -p "$RUN"

# --- certificates: a CA and a broker certificate for 127.0.0.1/localhost, PEM key store
(cd "$RUN"
 openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=bench CA" 2>/dev/null
 openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
 printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
 openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
   -extfile server.ext 2>/dev/null
 cat server.key server.crt ca.crt > server.pem)

start_zk "$RUN"
APID=""; BPID=""
cleanup() { for p in "$APID" "$BPID"; do [ -z "$p" ] || kill -9 "$p" 2>/dev/null || true; done
            kill "$ZKPID" 2>/dev/null || true; rm -rf "$RUN/a/logs" "$RUN/b/logs"; }
trap cleanup EXIT
P0=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port); Q0=$(free_port); Q1=$(free_port)
mkdir -p "$RUN/a" "$RUN/b"
cat > "$RUN/a/server.properties" <<P
broker.id=1
listeners=PLAINTEXT://127.0.0.1:$P0,SSL://127.0.0.1:$P1,SASL_PLAINTEXT://127.0.0.1:$P2,SASL_SSL://127.0.0.1:$P3
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN/a/logs
zookeeper.connect=127.0.0.1:$ZKP/a
offsets.topic.replication.factor=1
ssl.keystore.type=PEM
ssl.keystore.location=$RUN/server.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
P
JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";'
cat > "$RUN/b/server.properties" <<P
broker.id=1
listeners=PLAINTEXT://127.0.0.1:$Q0,ADMIN://127.0.0.1:$Q1
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,ADMIN:SASL_PLAINTEXT
inter.broker.listener.name=ADMIN
sasl.mechanism.inter.broker.protocol=PLAIN
log.dirs=$RUN/b/logs
zookeeper.connect=127.0.0.1:$ZKP/b
offsets.topic.replication.factor=1
authorizer.class.name=kafka.security.authorizer.AclAuthorizer
super.users=User:admin
listener.name.admin.sasl.enabled.mechanisms=PLAIN
listener.name.admin.plain.sasl.jaas.config=$JAAS
P
RUST_LOG=warn "$BIN" "$RUN/a/server.properties" >"$RUN/a/broker.log" 2>&1 & APID=$!
RUST_LOG=warn "$BIN" "$RUN/b/server.properties" >"$RUN/b/broker.log" 2>&1 & BPID=$!
wait_port "$P3"; wait_port "$Q1"

BA="127.0.0.1:$P0"; BB="127.0.0.1:$Q0"
SSLX=(-X security.protocol=ssl -X "ssl.ca.location=$RUN/ca.crt")
SASLX=(-X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bench -X sasl.password=bench-secret)
declare -A BOOT XS
BOOT[PLAINTEXT]="127.0.0.1:$P0"; XS[PLAINTEXT]=""
BOOT[SSL]="127.0.0.1:$P1"; XS[SSL]="${SSLX[*]}"
BOOT[SASL_PLAINTEXT]="127.0.0.1:$P2"; XS[SASL_PLAINTEXT]="-X security.protocol=sasl_plaintext ${SASLX[*]}"
BOOT[SASL_SSL]="127.0.0.1:$P3"; XS[SASL_SSL]="-X security.protocol=sasl_ssl -X ssl.ca.location=$RUN/ca.crt ${SASLX[*]}"

# SCRAM user on A; on B the benchmark principal (User:ANONYMOUS on PLAINTEXT) may write "acl-*"
# topics and create topics, next to 2,000 ACLs for other principals on 1,000 resource patterns (half literal topics, half
# prefixed, as in broker/benches/acl_bench.rs).
python3 - "$BA" "127.0.0.1:$Q1" <<'PY'
import sys
from confluent_kafka.admin import (AdminClient, AclBinding, AclOperation, AclPermissionType,
    ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialUpsertion)
a = AdminClient({"bootstrap.servers": sys.argv[1]})
info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
for _, f in a.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("bench", info, b"bench-secret")]).items():
    f.result(30)
b = AdminClient({"bootstrap.servers": sys.argv[2], "security.protocol": "sasl_plaintext",
                 "sasl.mechanisms": "PLAIN", "sasl.username": "admin", "sasl.password": "admin-secret"})
A, D = AclPermissionType.ALLOW, AclPermissionType.DENY
acls = [AclBinding(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, "User:ANONYMOUS", "*",
                   AclOperation.ALL, A),
        AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:ANONYMOUS",
                   "*", AclOperation.CREATE, A)]
for i in range(500):
    for name, pt in ((f"topic-{i}", ResourcePatternType.LITERAL), (f"app-{i}-", ResourcePatternType.PREFIXED)):
        acls.append(AclBinding(ResourceType.TOPIC, name, pt, f"User:u{i}", "*", AclOperation.WRITE, A))
        acls.append(AclBinding(ResourceType.TOPIC, name, pt, f"User:d{i}", "*", AclOperation.READ, D))
for f in b.create_acls(acls).values():
    f.result(60)
print(f"{len(acls)} ACLs on broker B", file=sys.stderr)
PY

tick=$(getconf CLK_TCK)
jiffies() { awk '{print $14+$15}' "/proc/$1/stat"; }
# rdkafka_performance's own records/s from its summary line
rate_of() { grep -o '[0-9]* msgs/s' | tail -1 | awk '{print $1}'; }

phase() { # pid -> "rate cpu_s_per_M" for the rdkafka_performance command in "$@" (after pid)
  local pid=$1; shift
  local j0 out j1; j0=$(jiffies "$pid")
  out=$("$PERF" "$@" 2>&1) || { log "rdkafka_performance failed: $out"; exit 1; }
  j1=$(jiffies "$pid")
  echo "$(echo "$out" | rate_of) $(calc "($j1 - $j0) / $tick / ($COUNT / 1000000)")"
}

PROTOS=(PLAINTEXT SSL SASL_PLAINTEXT SASL_SSL)
for pr in "${PROTOS[@]}"; do : > "$RUN/prod-$pr"; : > "$RUN/cons-$pr"; done
for r in $(seq "$RUNS"); do
  for k in 0 1 2 3; do
    pr=${PROTOS[$(( (k + r - 1) % 4 ))]}
    t="t-$pr-$r"; create_topic "$BA" "$t" 1 1
    # shellcheck disable=SC2086
    phase "$APID" -P -t "$t" -p 0 -b "${BOOT[$pr]}" ${XS[$pr]} -s 100 -c "$COUNT" -a -1 -X linger.ms=5 \
      >> "$RUN/prod-$pr"
    # shellcheck disable=SC2086
    phase "$APID" -C -t "$t" -p 0 -b "${BOOT[$pr]}" ${XS[$pr]} -o beginning -c "$COUNT" \
      >> "$RUN/cons-$pr"
    log "run $r $pr: produce $(tail -1 "$RUN/prod-$pr") consume $(tail -1 "$RUN/cons-$pr")"
  done
done
echo "== produce / consume, $COUNT x 100 B, 1 partition, medians of $RUNS (records/s, broker CPU-s per M records)"
pp=$(cut -d' ' -f1 "$RUN/prod-PLAINTEXT" | median); pc=$(cut -d' ' -f1 "$RUN/cons-PLAINTEXT" | median)
for pr in "${PROTOS[@]}"; do
  p=$(cut -d' ' -f1 "$RUN/prod-$pr" | median); c=$(cut -d' ' -f1 "$RUN/cons-$pr" | median)
  printf '%-15s produce %9.0f rec/s (%.2f of PLAINTEXT) cpu %.3f s/M | consume %9.0f rec/s (%.2f of PLAINTEXT) cpu %.3f s/M\n' \
    "$pr" "$p" "$(calc "$p / $pp")" "$(cut -d' ' -f2 "$RUN/prod-$pr" | median)" \
    "$c" "$(calc "$c / $pc")" "$(cut -d' ' -f2 "$RUN/cons-$pr" | median)"
done

# --- 2. ACL cost on PLAINTEXT produce: A (no authorizer) vs B (1,000 ACLs)
: > "$RUN/acl-A"; : > "$RUN/acl-B"
for r in $(seq "$ACL_RUNS"); do
  create_topic "$BA" "acl-$r" 1 1; create_topic "$BB" "acl-$r" 1 1
  phase "$APID" -P -t "acl-$r" -p 0 -b "$BA" -s 100 -c "$COUNT" -a -1 -X linger.ms=5 >> "$RUN/acl-A"
  phase "$BPID" -P -t "acl-$r" -p 0 -b "$BB" -s 100 -c "$COUNT" -a -1 -X linger.ms=5 >> "$RUN/acl-B"
  log "acl run $r: none $(tail -1 "$RUN/acl-A") 1000-acls $(tail -1 "$RUN/acl-B")"
done
ca=$(cut -d' ' -f2 "$RUN/acl-A" | median); cb=$(cut -d' ' -f2 "$RUN/acl-B" | median)
echo "== ACL cost, PLAINTEXT produce, medians of $ACL_RUNS"
printf 'no authorizer: %9.0f rec/s, cpu %.3f s/M | 1,000 ACLs: %9.0f rec/s, cpu %.3f s/M | CPU +%.1f%%\n' \
  "$(cut -d' ' -f1 "$RUN/acl-A" | median)" "$ca" "$(cut -d' ' -f1 "$RUN/acl-B" | median)" "$cb" \
  "$(calc "($cb / $ca - 1) * 100")"

# --- 3. new connections per second
echo "== new connections, $CONN_SECONDS s, 2 client processes"
for mode in tls scram; do
  port=$P1; [ "$mode" = tls ] || port=$P3
  j0=$(jiffies "$APID")
  n=$(python3 "$ROOT/scripts/bench_connect.py" "$mode" "127.0.0.1:$port" "$CONN_SECONDS" 2 \
        "$RUN/ca.crt" bench bench-secret)
  j1=$(jiffies "$APID")
  printf '%-6s %7.0f connections/s, broker CPU %.3f ms per connection\n' "$mode" \
    "$(calc "$n / $CONN_SECONDS")" "$(calc "($j1 - $j0) * 1000 / $tick / $n")"
done
