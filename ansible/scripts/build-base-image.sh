#!/usr/bin/env bash
# Build (once) the systemd base image every local-cluster host and molecule
# scenario runs on. Cached by tag: the tag carries a hash of this script and of
# the extra CA certificates baked in, so a changed recipe builds a new image.
#
#   MLPIPE_EXTRA_CA_DIR  directory of *.crt to trust inside the image (sites behind
#                        TLS-inspecting proxies); default /usr/local/share/ca-certificates
#   MLPIPE_BASE_IMAGE    image name (default mlpipe/debian-systemd)
#   MLPIPE_DEBIAN_MIRROR Debian mirror for debootstrap (default: debootstrap's own)
#
# Prints the image reference on stdout.
set -euo pipefail
log() { printf 'base-image: %s\n' "$*" >&2; }
die() { printf 'base-image: ERROR: %s\n' "$*" >&2; exit 1; }

name=${MLPIPE_BASE_IMAGE:-mlpipe/debian-systemd}
ca_dir=${MLPIPE_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
packages=python3,python3-apt,systemd,systemd-sysv,sudo,ca-certificates,iproute2,procps,curl,gnupg,locales

hash=$( { cat "$0"; find "$ca_dir" -name '*.crt' -type f -print0 2>/dev/null | sort -z | xargs -0r cat; } | sha256sum | cut -c1-12)
ref="$name:bookworm-$hash"

if docker image inspect "$ref" >/dev/null 2>&1; then
  log "using cached $ref"
  echo "$ref"; exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dockerfile_extra() {
  cat <<'DOCKERFILE'
# pip and uv (the roles install venvs with uv) in every container share the
# host's cache (mounted at /var/cache/mlpipe-pip by the local cluster and
# molecule; uv's under uv/, copied into venvs: the cache is another filesystem).
# uv caches what it downloads; pip caches no answer of an index that sends no
# cache headers, as the one here
RUN printf '[global]\ncache-dir = /var/cache/mlpipe-pip\n' > /etc/pip.conf \
 && mkdir -p -m 1777 /var/cache/mlpipe-pip /etc/uv \
 && printf 'cache-dir = "/var/cache/mlpipe-pip/uv"\nlink-mode = "copy"\n' > /etc/uv/uv.toml \
 && update-ca-certificates \
 && rm -f /etc/machine-id /var/lib/dbus/machine-id && touch /etc/machine-id \
 && systemctl mask systemd-firstboot.service systemd-udevd.service systemd-modules-load.service \
      getty.target console-getty.service sys-kernel-config.mount sys-kernel-debug.mount 2>/dev/null; \
    systemctl set-default multi-user.target
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
DOCKERFILE
}

mkdir -p "$tmp/ctx/ca"
find "$ca_dir" -name '*.crt' -type f -exec cp {} "$tmp/ctx/ca/" \; 2>/dev/null || true

if [ "${MLPIPE_BASE_FROM_REGISTRY:-auto}" != no ] && docker pull -q debian:bookworm >/dev/null 2>&1; then
  log "registry reachable: building FROM debian:bookworm"
  {
    echo "FROM debian:bookworm"
    echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages//,/ } && rm -rf /var/lib/apt/lists/* && touch -d 2000-01-01 /var/lib/apt/lists"
    echo "COPY ca/ /usr/local/share/ca-certificates/"
    dockerfile_extra
  } > "$tmp/ctx/Dockerfile"
else
  command -v debootstrap >/dev/null 2>&1 || {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      die "no registry and no debootstrap: install debootstrap (Debian package) and run again."
    fi
    log "installing debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  mirror=${MLPIPE_DEBIAN_MIRROR:-}
  log "no registry: debootstrap bookworm from ${mirror:-the default mirror} (about a minute)"
  debootstrap --variant=minbase --include="$packages" bookworm "$tmp/rootfs" ${mirror:+"$mirror"} >"$tmp/debootstrap.log" 2>&1 \
    || { tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/archives/"*.deb
  # an empty package list must look old, or apt modules trust cache_valid_time
  touch -d 2000-01-01 "$tmp/rootfs/var/lib/apt/lists"
  tar -C "$tmp/rootfs" -c . | docker import - "$name:rootfs-$hash" >/dev/null
  {
    echo "FROM $name:rootfs-$hash"
    echo "COPY ca/ /usr/local/share/ca-certificates/"
    dockerfile_extra
  } > "$tmp/ctx/Dockerfile"
fi
docker build -q --label org.mlpipe.managed=true -t "$ref" "$tmp/ctx" >/dev/null || die "docker build of $ref failed"
docker tag "$ref" "$name:latest"
log "built $ref"
echo "$ref"
