# SPDX-License-Identifier: Apache-2.0
"""qcow2 disks under the real Debian kernel: an ext4 filesystem made on the host as a raw base
image, a per-VM qcow2 overlay over it that the guest mounts and writes a file to and syncs, and a
read-only qcow2 disk. Afterwards `qemu-img check` finds the overlay clean, the base has not
changed by a byte, the file is in the overlay (converted to raw and read with debugfs) and e2fsck
finds the filesystem clean. Damaged or unsupported images stop kiln before the guest starts:
exit 2 and one line naming the file and the reason."""
import hashlib
import subprocess

import pytest

from conftest import boot, run_kiln, sample_disks


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_img(*args):
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def images(tmp_path):
    base, ro_raw = sample_disks(tmp_path, "base.img")
    # The backing name is relative: kiln finds it next to the overlay, as QEMU does.
    assert qemu_img("create", "-f", "qcow2", "-b", "base.img", "-F", "raw",
                    tmp_path / "overlay.qcow2").returncode == 0
    ro = tmp_path / "ro.qcow2"
    assert qemu_img("convert", "-f", "raw", "-O", "qcow2", ro_raw, ro).returncode == 0
    return base, tmp_path / "overlay.qcow2", ro_raw, ro


def test_overlay_over_raw_base(kvm, kiln, bzimage, initrd, images, tmp_path):
    base, overlay, ro_raw, ro = images
    base_before, ro_before = sha256(base), sha256(ro)
    g = boot(kiln, bzimage, initrd, "disks", "--disk", f"{overlay},id=overlay",
             "--disk", f"{ro},readonly=on,format=qcow2")
    assert g.returncode == 0, g
    f = g.facts
    assert f["vda_sectors"] == str(64 << 11) and f["vda_serial"] == "overlay", g
    assert f["hello"] == "hello from the host" and f.get("umount") == "ok", g
    assert "fstrim" not in f, g  # a qcow2 disk offers no discard
    assert f["vdb_ro"] == "1" and f["vdb_write"] == "refused", g
    assert f["vdb_sha256"] == sha256(ro_raw), g  # read through the qcow2 layer
    assert sha256(ro) == ro_before, g
    # The base is shared and read-only: not a byte changed.
    assert sha256(base) == base_before
    check = qemu_img("check", overlay)
    assert check.returncode == 0, check.stdout + check.stderr
    flat = tmp_path / "flat.img"
    assert qemu_img("convert", "-O", "raw", overlay, flat).returncode == 0
    dump = subprocess.run(["debugfs", "-R", "cat /written.bin", str(flat)], capture_output=True,
                          check=True)
    assert len(dump.stdout) == 8 << 20
    assert hashlib.sha256(dump.stdout).hexdigest() == f["written_sha256"], g
    fsck = subprocess.run(["e2fsck", "-fn", str(flat)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def patched(path, offset, data):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def bad_images(tmp_path):
    """(id, path, reason in the message)"""
    cases = []
    for name, offset, data, reason in [
        ("dirty", 72, (1).to_bytes(8, "big"), "dirty bit"),
        ("unknown-feature", 72, (1 << 33).to_bytes(8, "big"), "unknown incompatible feature bits"),
        ("l1-beyond", 40, (1 << 40).to_bytes(8, "big"), "beyond the end of the file"),
        ("encrypted", 32, (1).to_bytes(4, "big"), "encrypted"),
    ]:
        p = tmp_path / f"{name}.qcow2"
        assert qemu_img("create", "-f", "qcow2", p, "4M").returncode == 0
        patched(p, offset, data)
        cases.append((name, p, reason))
    loop_a, loop_b = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    assert qemu_img("create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", loop_a, "4M").returncode == 0
    assert qemu_img("create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", loop_b, "4M").returncode == 0
    cases.append(("backing-loop", loop_a, "loops back"))
    text = tmp_path / "text.raw"
    text.write_bytes(b"kiln\n" * 200000)
    comp = tmp_path / "comp.qcow2"
    assert qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", text, comp).returncode == 0
    cases.append(("compressed", comp, "compressed"))
    return cases


def test_damaged_images_refused(kiln, bzimage, tmp_path):
    for name, path, reason in bad_images(tmp_path):
        g = run_kiln(kiln, "run", "--kernel", bzimage, "--disk", path, timeout=60)
        assert g.returncode == 2, (name, g)
        lines = g.err.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], (name, g)
        assert g.out == "", (name, g)
    raw = tmp_path / "plain.raw"
    raw.write_bytes(bytes(1 << 20))
    g = run_kiln(kiln, "run", "--kernel", bzimage, "--disk", f"{raw},format=qcow2", timeout=60)
    assert g.returncode == 2 and "not a qcow2 image" in g.err, g
