#!/usr/bin/env bash
# Smoke test of docker/compose.yaml (ZooKeeper + 3 brokers) from the host: builds the images without
# a registry (docker/build-images.sh; SMOKE_SKIP_BUILD=1 to use the ones present), then runs
# docker/smoke.py (what it checks is in its docstring and docker/README.md). Exits non-zero on any
# failure; tears the compose project down either way (SMOKE_KEEP=1 leaves it running).
# Needs: docker, docker compose or docker-compose, python3 with confluent-kafka and kazoo
# (scripts/setup.sh installs them), host ports 19092, 29092, 39092 free.
# Run by hand; CI (scripts/test.sh) does not depend on Docker.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${SMOKE_SKIP_BUILD:-0}" != 1 ]; then
    "$here/build-images.sh"
fi
exec "${PYTHON:-python3}" "$here/smoke.py"
