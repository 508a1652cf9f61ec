#!/usr/bin/env bash
# Make sure a Docker engine answers. Never touches an engine that already runs.
#  1. `docker info` works            -> nothing to do.
#  2. dockerd missing                -> install Debian's docker.io (needs root + apt).
#  3. dockerd present, not running   -> start it in the background (hosts without
#     systemd, e.g. CI containers) and wait until it answers.
# Exits non-zero with one clear message when none of that is possible.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { printf 'ensure-docker: ERROR: %s\n' "$*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
  log "a Docker engine is already running; leaving it alone"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "no Docker engine answers and none can be installed here (need root and apt-get). Install Docker (Debian package docker.io) and start it, then run again."
  fi
  log "dockerd not found: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: cannot install docker.io. Install Docker yourself and run again."
  apt-get install -y -qq docker.io >/dev/null || die "apt-get install docker.io failed. Install Docker yourself and run again."
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  log "starting docker.service with systemctl"
  systemctl start docker || die "systemctl start docker failed; see 'journalctl -u docker'."
else
  [ "$(id -u)" -eq 0 ] || die "dockerd is installed but not running and this user cannot start it; start the Docker engine and run again."
  logfile=${MLPIPE_DOCKERD_LOG:-/var/log/mlpipe-dockerd.log}
  log "no systemd on this host: starting dockerd in the background (log: $logfile)"
  # stale pid file from an engine that died with a previous session
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  # The engine outlives this script: give it none of our descriptors beyond
  # stdio, or it would keep holding whatever the caller had open (a flock(1)
  # lock around `make`, a pipe a test reads to its end).
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
    done
    exec nohup dockerd >"$logfile" 2>&1 </dev/null
  ) &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "Docker engine is up ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
die "dockerd did not answer within 60 s; see ${logfile:-the docker service log}."
