#!/usr/bin/env bash
# The scenario's "disks": sparse files on this machine attached as loop devices
# (never a real disk). The molecule container gets them through docker
# --device (molecule.yml devices), which resolves the symlinks written here.
#   disks.sh attach        (re)create main and other (64 MiB, blank), print them
#   disks.sh grow NAME SIZE  grow NAME's backing file to SIZE and tell the kernel (losetup -c)
#   disks.sh detach        detach the loop devices of the backing files, remove them
# Files and links: /var/tmp/<MLPIPE_MOLECULE_PREFIX>-disks/{main,other}{.img,}
set -euo pipefail
dir=/var/tmp/${MLPIPE_MOLECULE_PREFIX:-mlpipe-mol-datadisk}-disks
names=(main other)

detach() {
  local f dev
  for f in "$dir"/*.img; do
    [ -e "$f" ] || continue
    # every loop device backed by this file (a killed run may have left some)
    for dev in $(losetup -j "$f" -O NAME -n 2>/dev/null || true); do
      losetup -d "$dev" || true
    done
  done
  rm -rf "$dir"
}

case ${1:-} in
  attach)
    detach
    mkdir -p "$dir"
    for n in "${names[@]}"; do
      truncate -s 64M "$dir/$n.img"
      dev=$(losetup -f --show "$dir/$n.img")
      ln -sfn "$dev" "$dir/$n"
      echo "disks: $n = $dev ($dir/$n.img)"
    done ;;
  grow)
    n=${2:?disks.sh grow NAME SIZE}; size=${3:?disks.sh grow NAME SIZE}
    truncate -s "$size" "$dir/$n.img"
    losetup -c "$(readlink -e "$dir/$n")"
    echo "disks: $n grown to $size" ;;
  detach)
    detach ;;
  *)
    echo "usage: $0 attach|grow NAME SIZE|detach" >&2; exit 2 ;;
esac
