"""Checks of the datadisk role on loop-device disks (molecule/default).

converge formatted the blank main disk (by its GCP stable name) and mounted it,
idempotence changed nothing, side_effect.yml remounted it as a new VM would
(with a file on it), grew it and offered the role an ext3 disk.
"""

MOUNT = "/mnt/disks/data"
OPTS = "defaults,noatime,nofail,x-systemd.device-timeout=30s"
DIRS = ("/srv/ngas", "/var/lib/postgresql", "/var/backups/mlflow")


def uuid(host, dev):
    return host.check_output(f"blkid -p -s UUID -o value {dev}")


def test_blank_disk_formatted_ext4_without_reserved_blocks(host):
    assert host.check_output("blkid -p -s TYPE -o value /dev/mlpipe-disk-main") == "ext4"
    tune = host.check_output("tune2fs -l /dev/mlpipe-disk-main")
    assert "Reserved block count:     0" in tune


def test_mounted_by_uuid_with_the_options(host):
    u = uuid(host, "/dev/mlpipe-disk-main")
    fstab = host.file("/etc/fstab").content_string.splitlines()
    entries = [line.split() for line in fstab if line.split()[1:2] == [MOUNT]]
    assert entries == [[f"UUID={u}", MOUNT, "ext4", OPTS, "0", "0"]], fstab
    m = host.mount_point(MOUNT)
    assert m.exists and m.filesystem == "ext4"
    assert "noatime" in m.options


def test_directories_are_bind_mounted_from_the_disk(host):
    fstab = host.file("/etc/fstab").content_string
    disk = host.check_output(f"stat -c %d {MOUNT}")
    for d in DIRS:
        assert host.run(f"mountpoint -q {d}").rc == 0, d
        assert host.check_output(f"stat -c %d {d}") == disk, d
        src = MOUNT + d
        assert f"{src} {d} none bind,nofail,x-systemd.requires-mounts-for={MOUNT} 0 0" in fstab
    assert host.file("/var/backups/mlflow").mode == 0o700


def test_data_kept_when_a_new_host_mounts_the_disk(host):
    assert host.file(f"{MOUNT}/srv/ngas/keep.txt").content_string == "kept\n"
    assert host.file("/srv/ngas/keep.txt").content_string == "kept\n"
    before = host.file("/root/datadisk-uuid").content_string.strip()
    assert uuid(host, "/dev/mlpipe-disk-main") == before


def test_filesystem_grew_with_the_disk(host):
    size = int(host.check_output(f"df --output=size -B1 {MOUNT} | tail -1"))
    # 64 MiB at first, 128 MiB after the grow (less the metadata)
    assert size > 100 * 2**20, size


def test_wrong_filesystem_refused_and_untouched(host):
    msg = host.file("/root/wrong-fs.msg").content_string
    assert "/dev/mlpipe-disk-other" in msg
    assert "ext3 filesystem" in msg and "datadisk_fstype=ext4" in msg
    assert "never reformats" in msg
    dev = "/dev/mlpipe-disk-other"
    assert host.check_output(f"blkid -p -s TYPE -o value {dev}") == "ext3"
    assert uuid(host, dev) == host.file("/root/other-uuid").content_string.strip()
    assert host.check_output(f"debugfs -R 'cat /precious.txt' {dev} 2>/dev/null") == "precious"
    assert not host.mount_point("/mnt/disks/other").exists
    assert "/mnt/disks/other" not in host.file("/etc/fstab").content_string


def test_nothing_without_a_device(host):
    assert not host.file("/srv/untouched").exists
