#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Firmware boot benchmark: Debian through SeaBIOS or OVMF and GRUB, kiln vs QEMU q35.

The project's GRUB disks (scripts/mkdiskimg) booted through firmware to the login prompt, under
kiln and under QEMU -M q35 with the same firmware, each on a fresh qcow2 overlay of the same
image on virtio-blk-pci, 1 vCPU, 512 MiB: seconds from exec to "login:" on the serial console.
BIOS: disk.img through Debian's SeaBIOS (kiln `--firmware bios`, QEMU's default bios-256k.bin).
UEFI: disk-uefi.img through Debian's OVMF, OVMF_CODE_4M.fd and a fresh copy of OVMF_VARS_4M.fd
for every boot (kiln `--firmware uefi=CODE,vars=COPY`, QEMU's pflash pair). The boots of every
mode run interleaved (bench/common.py); box times are emulator times, only the ratio carries
over. Run with `scripts/bench firmware [--firmware bios|uefi|both] [--runs N]`.
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
IMAGES = ROOT / ".cache/diskimg"
OVMF_CODE = pathlib.Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
MODES = {"bios": ("disk.img", "SeaBIOS"), "uefi": ("disk-uefi.img", "OVMF")}
VMMS = ("kiln", "qemu-q35")


def command(vmm, mode, disk, vars_):
    """The command line of @vmm booting @disk in @mode; @vars_ is the UEFI variable store."""
    if vmm == "kiln":
        firmware = "bios" if mode == "bios" else f"uefi={OVMF_CODE},vars={vars_}"
        return [str(ROOT / "build/kiln"), "run", "--firmware", firmware, "--disk", str(disk),
                "--transport", "pci", "--cpus", "1", "--memory", "512M"]
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-smp", "1",
           "-m", "512M", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio"]
    if mode == "uefi":
        cmd += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,file={vars_}"]
    return cmd + ["-drive", f"file={disk},if=none,id=d,format=qcow2",
                  "-device", "virtio-blk-pci,drive=d"]


def boot(vmm, mode, tmp):
    """Seconds from exec to "login:" of @vmm in @mode, on a fresh overlay (and variable store)."""
    disk, vars_ = tmp / f"{vmm}-{mode}.qcow2", tmp / f"{vmm}-{mode}-vars.fd"
    disk.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(IMAGES / MODES[mode][0]),
                    "-F", "raw", str(disk)], check=True)
    if mode == "uefi":
        shutil.copyfile(OVMF_VARS, vars_)
    t = run_until(command(vmm, mode, disk, vars_), "login:", 900)[0]
    print(f"boot {vmm} {mode}: {t:.1f} s", flush=True)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firmware", choices=("bios", "uefi", "both"), default="both",
                    help="which disk and firmware to boot (default both)")
    ap.add_argument("--runs", type=int, default=5, help="repetitions of each measurement")
    args = ap.parse_args()
    modes = list(MODES) if args.firmware == "both" else [args.firmware]
    for mode in modes:
        if not (IMAGES / MODES[mode][0]).exists():
            sys.exit(f"firmware bench: .cache/diskimg/{MODES[mode][0]} is missing; "
                     "run scripts/mkdiskimg")
    if "uefi" in modes and not (OVMF_CODE.exists() and OVMF_VARS.exists()):
        sys.exit(f"firmware bench: {OVMF_CODE} or {OVMF_VARS} is missing; install Debian's ovmf")
    tmp = pathlib.Path(tempfile.mkdtemp())
    try:
        names = [f"{vmm} {mode}" for mode in modes for vmm in VMMS]
        results = interleaved(names, lambda name: boot(*name.split(), tmp), args.runs)
        table(f"firmware benchmark: {' and '.join(MODES[m][1] for m in modes)} + GRUB + Debian to "
              f"login, {args.runs} runs each, interleaved; median [min-max]",
              {f"{mode.upper()} to login: (s)": {vmm: results[f"{vmm} {mode}"] for vmm in VMMS}
               for mode in modes})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
