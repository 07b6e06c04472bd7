# SPDX-License-Identifier: Apache-2.0
"""Guests built for QEMU's -kernel: a Multiboot v1 kernel (tests/guests/mbtest, built as
build/mbtest.elf) with modules given as QEMU's --initrd list, QEMU's fw_cfg and isa-debug-exit.
The test kernel checks the machine itself (multiboot info and memory map, fw_cfg, the MADT's CPU
count, PIT, RTC, local APIC timer) and reports through COM1 and the debug-exit port."""
import re
import zlib

import pytest

from conftest import BUILD, run_kiln, _require

CHECKS = ["fw_cfg", "multiboot", "mmap", "madt", "pit", "rtc", "apic_timer"]


@pytest.fixture(scope="module")
def mbtest():
    return _require(BUILD / "mbtest.elf")


def lines(out, name):
    return [line for line in out.splitlines() if line.startswith(f"MBTEST {name} ")]


def test_checks_pass_with_modules(kvm, kiln, mbtest, tmp_path):
    first = tmp_path / "first.bin"
    first.write_bytes(bytes(range(256)) * 37 + b"kiln")
    second = tmp_path / "second"
    second.write_bytes(b"multiboot module, second\n")
    modules = f"{first} --verbose a,,b,{second}"
    g = run_kiln(kiln, "run", "--kernel", mbtest, "--debug-exit", "--cpus", "2",
                 "--memory", "512M", "--cmdline", "hello=world", "--initrd", modules, timeout=300)
    assert g.returncode == 1, g  # (0 failures << 1) | 1
    for name in CHECKS:
        got = lines(g.out, name)
        assert len(got) == 1 and got[0].startswith(f"MBTEST {name} ok"), (name, g)
    assert "cpus=2 fw_cfg_cpus=2" in lines(g.out, "madt")[0], g
    assert "ram=0x20000000" in lines(g.out, "fw_cfg")[0], g
    assert "same_as_etc_e820=1" in lines(g.out, "mmap")[0], g
    assert f"cmdline='{mbtest} hello=world'" in lines(g.out, "multiboot")[0], g
    mods = lines(g.out, "module")
    assert len(mods) == 2, g
    for i, (path, string) in enumerate([(first, f"{first} --verbose a,b"), (second, str(second))]):
        data = path.read_bytes()
        assert mods[i] == (f"MBTEST module ok index={i} size={len(data)} "
                           f"crc32={zlib.crc32(data):#x} string='{string}'"), g
    assert "MBTEST done failures=0" in g.out, g


def test_debug_exit_port_and_status(kvm, kiln, mbtest):
    """Another port, wider: the status is still (failures << 1) | 1, and a one-vCPU machine
    reports one CPU in both the MADT and fw_cfg (implied by the multiboot kernel)."""
    g = run_kiln(kiln, "run", "--kernel", mbtest, "--debug-exit", "iobase=0xf4,iosize=4",
                 "--memory", "64M", timeout=300)
    assert g.returncode == 1, g
    assert "cpus=1 fw_cfg_cpus=1" in lines(g.out, "madt")[0], g
    assert "ram=0x4000000" in lines(g.out, "fw_cfg")[0], g


@pytest.mark.parametrize("case", ["text", "truncated-elf", "module-missing", "bad-checksum"])
def test_bad_input(kiln, mbtest, tmp_path, case):
    image = mbtest.read_bytes()
    kernel, initrd, needles = tmp_path / "kernel", [], []
    if case == "text":
        kernel.write_text("neither a bzImage nor a multiboot kernel\n" * 300)
        needles = [str(kernel), "not a bzImage or ELF vmlinux, nor a multiboot kernel"]
    elif case == "truncated-elf":
        kernel.write_bytes(image[:0x1000 + 64])  # the header survives, the code does not
        needles = [str(kernel), "runs past the end"]
    elif case == "module-missing":
        kernel = mbtest
        initrd = ["--initrd", f"{tmp_path}/nope args"]
        needles = ["--initrd", f"{tmp_path}/nope"]
    else:
        at = image.index((0x1BADB002).to_bytes(4, "little"))
        kernel.write_bytes(image[:at + 8] + b"\0\0\0\0" + image[at + 12:])
        needles = [str(kernel), "32-bit ELF file without a multiboot header"]
    g = run_kiln(kiln, "run", "--kernel", kernel, *initrd, "--debug-exit", timeout=60)
    assert g.returncode == 2, g
    err = [line for line in g.err.splitlines() if line.strip()]
    assert len(err) == 1, g
    for n in needles:
        assert n in err[0], (n, g)
    assert not re.search("MBTEST", g.out), g
