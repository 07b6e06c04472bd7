# SPDX-License-Identifier: Apache-2.0
"""A whole Debian 12 system on kiln: Debian's kernel, the initrd.img Debian's initramfs-tools
generated, and an ext4 root filesystem (debootstrap + mke2fs -d, scripts/mkrootfs) on a virtio-blk
disk, booted by systemd to the multi-user target and a login prompt on the serial console. A root
login writes a file and powers off; the file is in the image and e2fsck finds it clean."""
import json
import subprocess
import time

import pytest

from conftest import wait_for


def send(proc, text):
    proc.stdin.write(text.encode())
    proc.stdin.flush()


def firecracker_config(debian, disk, path):
    """Firecracker's getting-started VM: the rootfs drive as the root device (kiln appends
    root=/dev/vda rw), virtio-mmio as in Firecracker."""
    path.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(debian / "vmlinuz"),
                        "initrd_path": str(debian / "initrd.img"), "boot_args": "console=ttyS0"},
        "drives": [{"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True,
                    "is_read_only": False}],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 1024},
        "entropy": {},
    }))
    return path


@pytest.mark.parametrize("how", ["pci", "mmio-firecracker-config"])
def test_debian_boots_to_a_login_prompt(kvm, kiln, debian, tmp_path, how):
    disk = tmp_path / "rootfs.img"
    subprocess.run(["cp", "--sparse=always", str(debian / "rootfs.img"), str(disk)], check=True)
    if how == "pci":
        argv = [str(kiln), "run", "--kernel", str(debian / "vmlinuz"), "--initrd",
                str(debian / "initrd.img"), "--disk", f"{disk},id=root", "--rng", "--cpus", "1",
                "--memory", "1G", "--transport", "pci", "--cmdline", "console=ttyS0 root=/dev/vda rw"]
    else:
        argv = [str(kiln), "--no-api", "--config-file",
                str(firecracker_config(debian, disk, tmp_path / "vm.json"))]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = wait_for(proc, "kiln-guest login:", timeout=900)
        send(proc, "root\n")
        out += wait_for(proc, "Password:", timeout=120)
        time.sleep(0.5)
        send(proc, "kiln\n")
        out += wait_for(proc, "root@kiln-guest", timeout=120)
        send(proc, "echo KILN-OS=$(. /etc/os-release; echo $VERSION_ID) KILN-ROOT=$(findmnt -no SOURCE /) "
                   "KILN-TARGET=$(systemctl is-active multi-user.target) KILN-RNG=$(cat "
                   "/sys/class/misc/hw_random/rng_current); echo kiln-was-here > /root/proof.txt; "
                   "sync; systemctl poweroff\n")
        out += wait_for(proc, "KILN-TARGET=", timeout=120)
        assert proc.wait(timeout=300) == 0
        out += proc.stdout.read().decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
    assert "KILN-OS=12 KILN-ROOT=/dev/vda KILN-TARGET=active KILN-RNG=virtio_rng.0" in out, out[-3000:]
    assert "Reached target" in out and "Multi-User System" in out, out[-3000:]
    fsck = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    proof = subprocess.run(["debugfs", "-R", "cat /root/proof.txt", str(disk)], capture_output=True,
                           text=True, check=True)
    assert proof.stdout == "kiln-was-here\n"
