# kcat from Debian's package, for clients inside the compose network (docker/compose.yaml's `kcat`
# service) and docker/smoke.sh. BASE_IMAGE: see zookeeper.Dockerfile.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends kcat \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENTRYPOINT ["kcat"]
