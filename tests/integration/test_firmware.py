# SPDX-License-Identifier: Apache-2.0
"""kiln run --firmware bios|uefi. BIOS: Debian's SeaBIOS (QEMU's build, /usr/share/seabios/bios-256k.bin)
on kiln's PC. SeaBIOS finds the i440FX host bridge, places the PCI BARs itself, reads its
memory map and CPU count from fw_cfg, writes its screen to COM1 (fw_cfg NOGRAPHIC) and boots
the MBR of a virtio-blk disk through its own virtio driver, after installing kiln's ACPI tables
from fw_cfg (etc/table-loader). The boot sector here is 16-bit code written out byte by byte: it
prints KILN-MBR and the OEM ID of the RSDP it finds on COM1 and ends the VM through
isa-debug-exit.

UEFI: Debian's OVMF (OVMF_CODE_4M.fd with a copy of OVMF_VARS_4M.fd) on the same PC: it finds
its variable store as flash, the PIIX4's PM timer and the PIIX3's ISA bridge (its serial
console), reaches its shell without a disk, and boots scripts/mkdiskimg's GPT disk
(disk-uefi.img: GRUB at \\EFI\\BOOT\\BOOTX64.EFI, root on /dev/vda2) to a login prompt; the
variables it and Linux write land in the VARS file."""
import os
import select
import subprocess
import time

import pytest

from conftest import CACHE, _require, login_run_poweroff, overlay, run_kiln, wait_for

BIOS = "/usr/share/seabios/bios-256k.bin"
EXIT_VALUE = 0x2A  # the boot sector's debug-exit write: kiln exits (0x2A << 1) | 1


def boot_sector(port=0xF4, value=EXIT_VALUE):
    """512 bytes loaded at 0000:7C00 (GNU as .code16, hand-checked listing): print KILN-MBR on
    COM1, look for the RSDP signature "RSD PTR " on every 16-byte boundary of 0xE0000-0xFFFFF
    (ACPI 6.5 §5.2.5.1) and print its OEM ID (bytes 9-14) after KILN-RSDP-OEM=, or print
    KILN-RSDP-NONE; then write @value to I/O port @port (by default EXIT_VALUE to the
    debug-exit port; 0xFE to the i8042's 0x64 resets the machine) and halt."""
    code = bytes.fromhex(
        "fa"          # 00 cli
        "31c0"        # 01 xor ax, ax
        "8ed8"        # 03 mov ds, ax
        "fc"          # 05 cld
        "baf803"      # 06 mov dx, 0x3f8
        "be547c"      # 09 mov si, msg (0x7c54)
        "e83c00"      # 0c call puts
        "bb00e0"      # 0f mov bx, 0xe000
        "8ec3"        # 12 scan: mov es, bx
        "be807c"      # 14 mov si, sig (0x7c80)
        "31ff"        # 17 xor di, di
        "b90800"      # 19 mov cx, 8
        "f3a6"        # 1c repe cmpsb
        "740b"        # 1e je found
        "43"          # 20 inc bx
        "75ef"        # 21 jnz scan
        "be6e7c"      # 23 mov si, none (0x7c6e)
        "e82200"      # 26 call puts
        "eb19"        # 29 jmp done
        "be5f7c"      # 2b found: mov si, oem (0x7c5f)
        "e81a00"      # 2e call puts
        "bf0900"      # 31 mov di, 9
        "b90600"      # 34 mov cx, 6
        "268a05"      # 37 1: mov al, es:[di]
        "ee"          # 3a out dx, al
        "47"          # 3b inc di
        "e2f9"        # 3c loop 1
        "be7d7c"      # 3e mov si, eol (0x7c7d)
        "e80700"      # 41 call puts
        f"b0{value:02x}"  # 44 done: mov al, value
        f"e6{port:02x}"   # 46 out port, al
        "f4ebfd"      # 48 hlt; jmp 48
        "ac"          # 4b puts: lodsb
        "84c0"        # 4c test al, al
        "7403"        # 4e jz ret
        "ee"          # 50 out dx, al
        "ebf8"        # 51 jmp puts
        "c3"          # 53 ret
    )
    code += b"KILN-MBR\r\n\0"         # 54 msg
    code += b"KILN-RSDP-OEM=\0"        # 5f oem
    code += b"KILN-RSDP-NONE\0"        # 6e none
    code += b"\r\n\0"                 # 7d eol
    code += b"RSD PTR "                # 80 sig
    assert len(code) == 0x88
    return code.ljust(510, b"\0") + b"\x55\xaa"


@pytest.fixture(scope="module")
def bios():
    if not os.access(BIOS, os.R_OK):
        pytest.fail(f"{BIOS} is missing: apt-get install seabios")
    return BIOS


def test_boots_mbr_from_virtio_blk(kvm, kiln, bios, tmp_path):
    disk = tmp_path / "mbr.img"
    disk.write_bytes(boot_sector() + bytes((1 << 20) - 512))
    g = run_kiln(kiln, "run", "--firmware", "bios", "--disk", disk, "--transport", "pci",
                 "--debug-exit", "--cpus", "2", "--memory", "128M", timeout=600)
    assert g.returncode == (EXIT_VALUE << 1) | 1, g
    assert "SeaBIOS (version" in g.out, g
    assert "Booting from Hard Disk" in g.out, g
    assert "KILN-MBR" in g.out.split("Booting from Hard Disk", 1)[1], g
    # SeaBIOS ran kiln's etc/table-loader: the RSDP it installed is kiln's (OEM ID "KILN  "),
    # not the one SeaBIOS builds alone ("BOCHS ").
    assert "KILN-RSDP-OEM=KILN  \r\n" in g.out, g


def test_reset_runs_the_firmware_again(kvm, kiln, bios, tmp_path):
    """With firmware a guest reset starts the machine over (--reboot reset is the default):
    SeaBIOS runs again and boots the disk again. The boot sector here resets through the i8042
    every time, so the machine loops until the test stops it. With --reboot exit kiln ends with
    3 after the first reset."""
    disk = tmp_path / "mbr.img"
    disk.write_bytes(boot_sector(port=0x64, value=0xFE) + bytes((1 << 20) - 512))
    argv = [str(kiln), "run", "--firmware", "bios", "--disk", str(disk), "--memory", "128M"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out = wait_for(proc, "KILN-MBR", timeout=600)
        out += wait_for(proc, "KILN-MBR", timeout=600)
        assert proc.poll() is None, (proc.returncode, proc.stderr.read())
    finally:
        proc.kill()
        proc.wait()
    assert out.count("SeaBIOS (version") >= 2, out[-3000:]
    g = run_kiln(*argv, "--reboot", "exit", timeout=600)
    assert g.returncode == 3, g
    assert g.out.count("SeaBIOS (version") == 1 and "KILN-MBR" in g.out, g


def test_no_bootable_device(kvm, kiln, bios):
    """No disk: SeaBIOS says so and waits to retry; kiln keeps running it."""
    proc = subprocess.Popen([str(kiln), "run", "--firmware", f"bios={bios}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, deadline = b"", time.monotonic() + 600
    try:
        while b"No bootable device" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 5)
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if ready and not chunk:
                break
            out += chunk
        assert b"No bootable device" in out, out[-2000:]
        assert proc.poll() is None, (proc.returncode, proc.stderr.read())
    finally:
        proc.kill()
        proc.wait()


def test_debian_with_grub_boots_to_a_login_prompt(kvm, kiln, bios, tmp_path):
    """scripts/mkdiskimg's disk: SeaBIOS boots GRUB from the MBR, GRUB (on the serial console)
    loads Debian's kernel and initrd from the ext4 partition, systemd reaches a login prompt.
    Linux runs on kiln's ACPI tables (the DSDT's OEM ID is kiln's), and poweroff through the
    DSDT's _S5 and the PM1a control register ends kiln with 0. The disk is a qcow2 overlay:
    the cached image stays as built."""
    disk = overlay(_require(CACHE / "diskimg/disk.img"), tmp_path / "debian.qcow2")
    out = login_run_poweroff(
        [kiln, "run", "--firmware", "bios", "--disk", disk, "--transport", "pci", "--cpus", "1",
         "--memory", "512M"],
        "echo KILN-ROOT=$(findmnt -no SOURCE /) KILN-CPUS=$(nproc) KILN-DSDT-OEM=$(head -c 16 "
        "/sys/firmware/acpi/tables/DSDT | tail -c 6 | tr -d ' '); systemctl poweroff",
        "KILN-DSDT-OEM=", timeout=1500)
    assert "SeaBIOS (version" in out, out[-3000:]
    grub = out.index("KILN-GRUB: loading Linux")
    assert out.index("Booting from Hard Disk") < grub < out.index("Linux version"), out[-3000:]
    assert "KILN-ROOT=/dev/vda1 KILN-CPUS=1 KILN-DSDT-OEM=KILN" in out, out[-3000:]


@pytest.mark.parametrize("case", ["missing", "not-multiple", "too-small", "too-big",
                                  "directory", "with-kernel"])
def test_bad_firmware(kiln, tmp_path, case):
    fw = tmp_path / "bios.bin"
    extra, needles = [], [str(fw)]
    if case == "missing":
        needles.append("No such file or directory")
    elif case == "not-multiple":
        fw.write_bytes(bytes(96 << 10))
        needles.append("98304 bytes is not a firmware image size")
    elif case == "too-small":
        fw.write_bytes(bytes(512))
        needles.append("512 bytes is not a firmware image size")
    elif case == "too-big":
        fw.write_bytes(bytes((16 << 20) + (64 << 10)))
        needles.append("is not a firmware image size")
    elif case == "directory":
        fw.mkdir()
        needles.append("not a regular file")
    else:
        fw.write_bytes(bytes(256 << 10))
        extra, needles = ["--kernel", fw], ["--firmware", "--kernel is not taken"]
    g = run_kiln(kiln, "run", "--firmware", f"bios={fw}", *extra, timeout=60)
    assert g.returncode == 2, g
    err = [line for line in g.err.splitlines() if line.strip()]
    assert len(err) == 1, g
    for n in needles:
        assert n in err[0], (n, g)
    assert err[0].startswith("kiln run: --firmware: "), g
