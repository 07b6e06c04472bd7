#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Firmware boot benchmark: the project's GRUB BIOS disk (scripts/mkdiskimg) booted through
Debian's SeaBIOS to the login prompt, under kiln (`--firmware bios`, virtio-blk on PCI) and under
QEMU -M q35 with the same firmware (its default bios-256k.bin) and a virtio-blk-pci disk, each on
a fresh qcow2 overlay of the same image, 1 vCPU, 512 MiB: seconds from exec to "login:" on the
serial console. Runs interleaved (bench/common.py); box times are emulator times, only the ratio
carries over. Run with `scripts/bench firmware [--runs N]`.
"""
import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

from blk import run_until
from common import interleaved, table

ROOT = pathlib.Path(__file__).resolve().parents[1]


def command(vmm, disk):
    if vmm == "kiln":
        return [str(ROOT / "build/kiln"), "run", "--firmware", "bios", "--disk", str(disk),
                "--transport", "pci", "--cpus", "1", "--memory", "512M"]
    return ["qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-smp", "1",
            "-m", "512M", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-drive", f"file={disk},if=none,id=d,format=qcow2", "-device", "virtio-blk-pci,drive=d"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="repetitions of each measurement")
    args = ap.parse_args()
    image = ROOT / ".cache/diskimg/disk.img"
    if not image.exists():
        sys.exit("firmware bench: .cache/diskimg/disk.img is missing; run scripts/mkdiskimg")
    tmp = pathlib.Path(tempfile.mkdtemp())
    try:
        def boot(vmm):
            disk = tmp / f"{vmm}.qcow2"
            disk.unlink(missing_ok=True)
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "raw",
                            str(disk)], check=True)
            t = run_until(command(vmm, disk), "login:", 900)[0]
            print(f"boot {vmm}: {t:.1f} s", flush=True)
            return t

        table(f"firmware benchmark: SeaBIOS + GRUB + Debian to login, {args.runs} runs each, "
              "interleaved; median [min-max]",
              {"to login: (s)": interleaved(("kiln", "qemu-q35"), boot, args.runs)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
