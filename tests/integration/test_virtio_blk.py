# SPDX-License-Identifier: Apache-2.0
"""virtio-blk and virtio-rng on both transports (virtio-pci with MSI-X or INTx, virtio-mmio
found through ACPI), used by the real Debian kernel: an ext4
image made on the host with mke2fs -d is mounted in the guest, a file written and synced there is
found on the host with debugfs, e2fsck finds the filesystem clean, a read-only disk refuses
writes and stays byte-for-byte the same, and the guest's hwrng is kiln's virtio-rng."""
import hashlib
import subprocess

import pytest

from conftest import boot, sample_disks


@pytest.fixture
def images(tmp_path):
    return sample_disks(tmp_path, "root.img")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


TRANSPORTS = [
    # (id, kiln arguments, disk engine, guest command line, driver the guest binds, MSI-X used)
    ("pci-msix-io_uring", [], "io_uring", "", "virtio-pci", True),
    ("pci-intx-sync", ["--transport", "pci"], "sync", "pci=nomsi", "virtio-pci", False),
    ("mmio-io_uring", ["--transport", "mmio"], "io_uring", "", "virtio-mmio", False),
]


@pytest.mark.parametrize("args,engine,cmdline,driver,msix", [t[1:] for t in TRANSPORTS],
                         ids=[t[0] for t in TRANSPORTS])
def test_ext4_disk_readonly_disk_and_rng(kvm, kiln, bzimage, initrd, images, args, engine,
                                         cmdline, driver, msix):
    ext4, ro = images
    ro_before = sha256(ro)
    g = boot(kiln, bzimage, initrd, "disks", "--disk", f"{ext4},id=rootdisk,engine={engine}",
             "--disk", f"{ro},readonly=on,engine={engine}", "--rng", *args, cmdline=cmdline)
    assert g.returncode == 0, g
    f = g.facts
    assert f["virtio_transport"] == driver, g
    assert (int(f["msix_vectors"]) > 0) == msix, g
    assert f["vda_sectors"] == str(64 << 11) and f["vda_ro"] == "0" and f["vda_serial"] == "rootdisk", g
    assert f["vdb_sectors"] == str(2048) and f["vdb_ro"] == "1" and f["vdb_serial"] == "kiln-disk1", g
    assert f["hello"] == "hello from the host", g
    assert f.get("umount") == "ok" and f.get("fstrim") == "ok", g
    # The synced file is in the image as the guest saw it.
    dump = subprocess.run(["debugfs", "-R", "cat /written.bin", str(ext4)], capture_output=True, check=True)
    assert len(dump.stdout) == 8 << 20
    assert hashlib.sha256(dump.stdout).hexdigest() == f["written_sha256"], g
    fsck = subprocess.run(["e2fsck", "-fn", str(ext4)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    # The read-only disk: the write is refused and not a byte changed.
    assert f["vdb_write"] == "refused", g
    assert f["vdb_sha256"] == ro_before == sha256(ro), g
    assert f["rng"] == "virtio_rng.0" and f["rng_bytes"] == "65536", g


def test_no_devices_without_options(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "disks")
    assert g.returncode == 0, g
    assert not any(k.startswith("vd") for k in g.facts) and g.facts["rng"] == "none", g
    assert "virtio_mmio.device" not in g.out, g


def test_hostile_driver(kvm, kiln, bzimage, initrd):
    """A guest that programs the device itself: bad queue sizes, looping chains, buffers outside
    RAM, a lying available index, notifications for queues that do not exist. kiln keeps
    running, the device asks for a reset where the spec says so, and works again after one."""
    g = boot(kiln, bzimage, initrd, "hostile", "--rng", "--transport", "mmio")
    assert g.returncode == 0, g
    f = g.facts
    assert f["magic"] == "0x74726976", g
    assert f["no_version_1_features_ok"] == "0", g
    assert f["bad_size"] == "64" and f["good_start"] == "0", g
    assert f["loop"] == "64" and f["outside_ram"] == "64" and f["avail_jump"] == "64", g
    assert f["bad_queue_notify"] == "0", g
    assert f["rng_after_reset"] == "64", g
    # Each kind of misbehaviour is logged, once.
    assert g.err.count("needs a reset") == 1, g
