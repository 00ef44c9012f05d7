#!/bin/sh
# Writes server.properties from environment variables, then runs the broker.
#   SAMSA_BROKER_ID (required), SAMSA_ZOOKEEPER_CONNECT (required),
#   SAMSA_ADVERTISED_HOST (default: hostname), SAMSA_PORT (default 9092),
#   SAMSA_EXTRA: more "key=value" lines appended verbatim.
set -eu
conf=/var/lib/samsa/server.properties
cat > "$conf" <<PROPS
broker.id=${SAMSA_BROKER_ID:?set SAMSA_BROKER_ID}
listeners=PLAINTEXT://0.0.0.0:${SAMSA_PORT:-9092}
advertised.listeners=PLAINTEXT://${SAMSA_ADVERTISED_HOST:-$(hostname)}:${SAMSA_PORT:-9092}
log.dirs=/var/lib/samsa/logs
zookeeper.connect=${SAMSA_ZOOKEEPER_CONNECT:?set SAMSA_ZOOKEEPER_CONNECT}
${SAMSA_EXTRA:-}
PROPS
exec /usr/local/bin/samsa-broker "$conf"
