#!/bin/sh
# Writes server.properties from environment variables, then runs the broker. Two listeners, so that
# the broker is reachable both from inside the container network and through a published port:
#   INTERNAL  0.0.0.0:$SAMSA_INTERNAL_PORT, advertised as $SAMSA_INTERNAL_HOST:$SAMSA_INTERNAL_PORT;
#             brokers replicate over it (inter.broker.listener.name), and clients in the network use it
#   EXTERNAL  0.0.0.0:$SAMSA_PORT, advertised as $SAMSA_ADVERTISED_HOST:$SAMSA_PORT; publish the
#             port under the same number so that clients outside (e.g. the host) can follow the
#             advertised address
# Variables:
#   SAMSA_BROKER_ID (required), SAMSA_ZOOKEEPER_CONNECT (required),
#   SAMSA_PORT (default 9092), SAMSA_ADVERTISED_HOST (default: hostname),
#   SAMSA_INTERNAL_PORT (default 9093), SAMSA_INTERNAL_HOST (default: hostname),
#   SAMSA_EXTRA: more "key=value" lines appended verbatim (later lines win, so they may override
#   any line above).
set -eu
conf=/var/lib/samsa/server.properties
host=$(hostname)
port=${SAMSA_PORT:-9092}
internal_port=${SAMSA_INTERNAL_PORT:-9093}
if [ "$port" = "$internal_port" ]; then
    echo "entrypoint: SAMSA_PORT and SAMSA_INTERNAL_PORT must differ (both $port)" >&2
    exit 1
fi
cat > "$conf" <<PROPS
broker.id=${SAMSA_BROKER_ID:?set SAMSA_BROKER_ID}
listeners=INTERNAL://0.0.0.0:${internal_port},EXTERNAL://0.0.0.0:${port}
advertised.listeners=INTERNAL://${SAMSA_INTERNAL_HOST:-$host}:${internal_port},EXTERNAL://${SAMSA_ADVERTISED_HOST:-$host}:${port}
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=INTERNAL
log.dirs=/var/lib/samsa/logs
zookeeper.connect=${SAMSA_ZOOKEEPER_CONNECT:?set SAMSA_ZOOKEEPER_CONNECT}
${SAMSA_EXTRA:-}
PROPS
exec /usr/local/bin/samsa-broker "$conf"
