#!/usr/bin/env bash
# Prints why the scenario cannot run here (nothing when it can): its disks are
# loop devices attached on this machine, which needs root and the loop driver.
if [ "$(id -u)" -ne 0 ]; then echo "needs root to attach loop devices (losetup)"; exit 0; fi
if ! command -v losetup >/dev/null; then echo "losetup (util-linux) is missing"; exit 0; fi
if [ ! -e /dev/loop-control ]; then echo "no loop device driver (/dev/loop-control)"; exit 0; fi
