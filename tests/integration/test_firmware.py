# SPDX-License-Identifier: Apache-2.0
"""kiln run --firmware bios: Debian's SeaBIOS (QEMU's build, /usr/share/seabios/bios-256k.bin)
on kiln's PC. SeaBIOS finds the i440FX host bridge, places the PCI BARs itself, reads its
memory map and CPU count from fw_cfg, writes its screen to COM1 (fw_cfg NOGRAPHIC) and boots
the MBR of a virtio-blk disk through its own virtio driver. The boot sector here is 16-bit code
written out byte by byte: it prints KILN-MBR on COM1 and ends the VM through isa-debug-exit."""
import os
import select
import struct
import subprocess
import time

import pytest

from conftest import run_kiln

BIOS = "/usr/share/seabios/bios-256k.bin"
EXIT_VALUE = 0x2A  # the boot sector's debug-exit write: kiln exits (0x2A << 1) | 1


def boot_sector():
    """512 bytes loaded at 0000:7C00: print the message on COM1, then write EXIT_VALUE to the
    debug-exit port 0xF4 and halt."""
    code = bytearray()
    code += b"\xfa"                    # cli
    code += b"\xba\xf8\x03"            # mov dx, 0x3f8
    code += b"\xbe\x00\x00"            # mov si, message (patched below)
    si_at = len(code) - 2
    loop = len(code)
    code += b"\x2e\xac"                # lodsb (cs:si): SeaBIOS jumps to 0000:7C00
    code += b"\x84\xc0"                # test al, al
    code += b"\x74\x03"                # jz done
    code += b"\xee"                    # out dx, al
    code += bytes([0xEB, (loop - (len(code) + 2)) & 0xFF])  # jmp loop
    code += bytes([0xB0, EXIT_VALUE])  # done: mov al, EXIT_VALUE
    code += b"\xe6\xf4"                # out 0xf4, al
    code += b"\xf4\xeb\xfd"            # hlt; jmp hlt
    struct.pack_into("<H", code, si_at, 0x7C00 + len(code))
    code += b"KILN-MBR\r\n\0"
    return bytes(code).ljust(510, b"\0") + b"\x55\xaa"


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
