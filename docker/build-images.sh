#!/usr/bin/env bash
# Builds every image docker/compose.yaml needs WITHOUT a container registry (only Debian's package
# mirror is used):
#   samsa-base:bookworm   Debian bookworm from `debootstrap --variant=minbase` + `docker import`
#                         (cached: made only when missing, or with --rebuild-base)
#   samsa-zookeeper:dev   docker/zookeeper.Dockerfile on that base (Debian's `zookeeper` package)
#   samsa-kcat:dev        docker/kcat.Dockerfile on that base (Debian's `kcat`; compose's `kcat`
#                         tool and docker/smoke.sh's client inside the network)
#   samsa:dev             docker/Dockerfile on that base, with a samsa-broker built on this host
#                         (`cargo build --release -p samsa-broker`) instead of in a rust image
# Usage: docker/build-images.sh [--rebuild-base]
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), CARGO_TARGET_DIR (default <repo>/target),
#      SAMSA_BASE_IMAGE, SAMSA_ZOOKEEPER_IMAGE, SAMSA_KCAT_IMAGE, SAMSA_IMAGE (the tags above;
#      compose.yaml names the defaults).
# Needs root (debootstrap), docker and cargo; installs debootstrap from Debian if missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base_image=${SAMSA_BASE_IMAGE:-samsa-base:bookworm}
zk_image=${SAMSA_ZOOKEEPER_IMAGE:-samsa-zookeeper:dev}
kcat_image=${SAMSA_KCAT_IMAGE:-samsa-kcat:dev}
samsa_image=${SAMSA_IMAGE:-samsa:dev}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
rebuild_base=0
[ "${1:-}" = "--rebuild-base" ] && rebuild_base=1

log() { printf '[build-images %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The base image. debootstrap needs root and a real filesystem (not a container's overlay).
if [ "$rebuild_base" = 0 ] && docker image inspect "$base_image" >/dev/null 2>&1; then
    log "$base_image exists; skipping debootstrap (--rebuild-base to remake it)"
else
    command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }; }
    log "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
    root="$tmp/rootfs"
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$tmp/debootstrap.log" 2>&1 ||
        { tail -30 "$tmp/debootstrap.log" >&2; exit 1; }
    # Same suites as debian:bookworm-slim, so `apt-get install` in image builds gets security fixes.
    security=${mirror%/debian}/debian-security
    cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
    # What the official slim images also do: keep no package caches or lists in the layer.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$root/etc/apt/apt.conf.d/99samsa-no-recommends"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    log "docker import -> $base_image"
    tar --numeric-owner -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
    rm -rf "$root"
fi

# build TAG DOCKERFILE CONTEXT [docker build args...]: builds, then deletes the image TAG named before
# if it was replaced (retagging leaves it dangling; one still used by a container stays).
build() {
    local tag=$1 file=$2 context=$3 old
    shift 3
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    log "building $tag"
    docker build -q -f "$file" "$@" -t "$tag" "$context" >/dev/null
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
        docker rmi "$old" >/dev/null 2>&1 || true
    fi
}

# 2. ZooKeeper and kcat on the base (apt-get inside the build: needs Debian's mirror, no registry).
build "$zk_image" "$repo/docker/zookeeper.Dockerfile" "$repo/docker" --build-arg "BASE_IMAGE=$base_image"
build "$kcat_image" "$repo/docker/kcat.Dockerfile" "$repo/docker" --build-arg "BASE_IMAGE=$base_image"

# 3. samsa-broker on the host, then docker/Dockerfile fed a small context holding the binary under
#    prebuilt/ (the Dockerfile copies it instead of compiling when it is there).
log "cargo build --release -p samsa-broker"
(cd "$repo" && cargo build --release -p samsa-broker)
bin="$target_dir/release/samsa-broker"
# The runtime image has only Debian's base libraries: refuse a binary that needs anything else.
extra=$(ldd "$bin" | awk '{print $1}' |
    grep -Ev '^(linux-vdso\.so|/lib64/ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)' || true)
if [ -n "$extra" ]; then
    echo "samsa-broker links libraries the base image lacks: $extra" >&2
    exit 1
fi
ctx="$tmp/context"
mkdir -p "$ctx/prebuilt" "$ctx/docker"
cp "$bin" "$ctx/prebuilt/samsa-broker"
cp "$repo/docker/entrypoint.sh" "$ctx/docker/entrypoint.sh"
build "$samsa_image" "$repo/docker/Dockerfile" "$ctx" \
    --build-arg "BUILD_IMAGE=$base_image" --build-arg "RUNTIME_IMAGE=$base_image"
# The build stage's image (a copy of the binary) is of no further use.
docker image prune -f --filter label=org.samsa.stage=build >/dev/null
log "done: $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${base_image%%:*}|${zk_image%%:*}|${kcat_image%%:*}|${samsa_image%%:*}):" | tr '\n' ' ')"
