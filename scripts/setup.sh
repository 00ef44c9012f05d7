#!/usr/bin/env bash
# Idempotent installer for a fresh Debian machine: everything the cluster scripts and the
# end-to-end tests need. Safe to run again; each step checks before it installs.
#
#   Debian: zookeeper, kcat, a JDK (single-file `java Prog.java` needs the compiler),
#           iproute2, nftables (the fault drill)
#   Python: confluent-kafka, kafka-python, kazoo, prometheus-client (metrics text parser)
#   Java Kafka client 3.9.1 (+ slf4j-api, lz4-java, snappy-java, zstd-jni) -> .tools/jars/
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JARS="$ROOT/.tools/jars"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

log() { echo "[setup] $*"; }

# --- Debian packages -------------------------------------------------------------------
need_apt=()
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || need_apt+=(zookeeper)
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
if ! command -v javac >/dev/null 2>&1; then need_apt+=(openjdk-17-jdk-headless); fi
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
# The fault drill (drill/): network namespaces, nft rules, tbf, prlimit.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v prlimit >/dev/null 2>&1 || need_apt+=(util-linux)
if ! command -v python3 >/dev/null 2>&1; then
  need_apt+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  need_apt+=(python3-pip)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
  log "Debian packages present (zookeeper, kcat, jdk)"
fi

# --- Python clients --------------------------------------------------------------------
PY="${PYTHON:-python3}"
# Pinned so every run tests against the same clients. kafka-python stays on 2.3.x: 3.0.x can
# drop a JoinGroup/SyncGroup round that finished between two poll() calls and rejoin at once;
# with several consumers polled from one thread, its group leader then rebalanced in a loop
# (seen against Samsa; the same client logic would do it against Kafka).
PY_PKGS=(confluent-kafka==2.16.1 kafka-python==2.3.3 kazoo==2.11.0 prometheus-client==0.26.0)
if ! "$PY" - "${PY_PKGS[@]}" >/dev/null 2>&1 <<'PYCHECK'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PYCHECK
then
  log "pip install ${PY_PKGS[*]}"
  # Debian's system Python refuses global pip installs (PEP 668) unless told otherwise.
  "$PY" -m pip install -q "${PY_PKGS[@]}" 2>/dev/null \
    || "$PY" -m pip install -q --break-system-packages "${PY_PKGS[@]}"
else
  log "Python clients present (${PY_PKGS[*]})"
fi

# --- Java Kafka client 3.9.1 ------------------------------------------------------------
want_jars=(kafka-clients slf4j-api lz4-java snappy-java zstd-jni)
missing=0
for j in "${want_jars[@]}"; do [ -f "$JARS/$j.jar" ] || missing=1; done
if [ "$missing" = 1 ]; then
  log "fetching the Java Kafka client jars into $JARS"
  mkdir -p "$JARS"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  whl="$(ls /tmp/jars/shigawire_apache_flink_libraries-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$whl" ]; then
    "$PY" -m pip download -q --no-deps -d "$tmp" shigawire-apache-flink-libraries
    whl="$(ls "$tmp"/shigawire_apache_flink_libraries-*.whl | head -n1)"
  fi
  for j in "${want_jars[@]}"; do
    unzip -o -q -j "$whl" "pyflink/lib/$j.jar" -d "$JARS"
  done
else
  log "Java client jars present in $JARS"
fi

log "done"
