"""A whole Debian 12 system on kiln: Debian's kernel, the initrd.img Debian's initramfs-tools
generated, and an ext4 root filesystem (debootstrap + mke2fs -d, scripts/mkrootfs) on a virtio-blk
disk, booted by systemd to the multi-user target and a login prompt on the serial console. A root
login writes a file and powers off; the file is in the image and e2fsck finds it clean."""
import subprocess
import time

import pytest

from conftest import wait_for


def send(proc, text):
    proc.stdin.write(text.encode())
    proc.stdin.flush()


@pytest.mark.parametrize("transport", ["pci", "mmio"])
def test_debian_boots_to_a_login_prompt(kvm, kiln, debian, tmp_path, transport):
    disk = tmp_path / "rootfs.img"
    subprocess.run(["cp", "--sparse=always", str(debian / "rootfs.img"), str(disk)], check=True)
    proc = subprocess.Popen([str(kiln), "run", "--kernel", str(debian / "vmlinuz"),
                             "--initrd", str(debian / "initrd.img"), "--disk", f"{disk},id=root",
                             "--rng", "--cpus", "2", "--memory", "1G", "--transport", transport,
                             "--cmdline", "console=ttyS0 root=/dev/vda rw"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
