#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Block benchmark: fio inside the Debian guest (scripts/mkrootfs) on a second virtio-blk disk,
under kiln and under QEMU (-M q35, virtio-blk-pci, aio=io_uring) on the same image file, and fio
on the host on that file, in one run; then Debian's boot to the login prompt under both VMMs.

  randread   4 KiB random reads, iodepth 32: IOPS
  seqread    1 MiB sequential reads, iodepth 8: MiB/s
  seqwrite   1 MiB sequential writes, iodepth 8: MiB/s
  boot       exec to "login:" on the serial console, seconds (systemd, multi-user target)

The images live in a tmpfs (inside scripts/kvm-box that is the only local filesystem), which has
no O_DIRECT: QEMU runs with cache=writeback instead of cache=none and host fio is buffered; the
guests use O_DIRECT on their virtual disks either way. Times in the box are emulator times; only
the ratios carry over. kiln runs with its seccomp filters and again with --no-seccomp: the
kiln/kiln-noseccomp ratio is what the filters cost. With --format qcow2 the guests' data disk is
a fresh qcow2 overlay over the data file for every repetition (a sandbox's per-VM overlay on a
shared base: reads of unwritten clusters go to the base, writes allocate clusters), qcow2 in
QEMU's own driver and in kiln's; the host's fio is then left out. Every figure is the median of --runs runs
(default 5) interleaved across the VMMs, with its min-max; a failed repetition is reported and
run again (bench/common.py). Run with `scripts/bench blk`.
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from common import RepetitionFailed, interleaved, table

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEBIAN = ROOT / ".cache/rootfs"
JOBS = [("randread", "randread", "4k", 32), ("seqread", "read", "1M", 8), ("seqwrite", "write", "1M", 8)]
DATA_MIB = 512


def fio_metric(name, read_kbs, read_iops, write_kbs):
    if name == "randread":
        return float(read_iops)
    return float(write_kbs if name == "seqwrite" else read_kbs) / 1024.0  # KiB/s -> MiB/s


def vmm_command(vmm, root, data, cmdline, fmt="raw"):
    kernel, initrd = DEBIAN / "vmlinuz", DEBIAN / "initrd.img"
    if vmm.startswith("kiln"):
        return [str(ROOT / "build/kiln"), "run", "--kernel", str(kernel), "--initrd", str(initrd),
                "--disk", str(root), *(["--disk", str(data)] if data else []), "--rng",
                "--cpus", "2", "--memory", "1G", "--cmdline", cmdline,
                *(["--no-seccomp"] if vmm == "kiln-noseccomp" else [])]
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-smp", "2",
           "-m", "1G", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
           "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
           "-drive", f"file={root},if=none,id=root,format=raw,aio=io_uring,cache=writeback",
           "-device", "virtio-blk-pci,drive=root", "-device", "virtio-rng-pci"]
    if data:
        cmd += ["-drive", f"file={data},if=none,id=data,format={fmt},aio=io_uring,cache=writeback",
                "-device", "virtio-blk-pci,drive=data"]
    return cmd


def run_until(cmd, marker, timeout):
    """Run @cmd, return (seconds until @marker on stdout, all output); the VMM is killed after."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen, when = b"", None
    os.set_blocking(proc.stdout.fileno(), False)
    try:
        while time.monotonic() - start < timeout:
            chunk = proc.stdout.read()
            if chunk:
                seen += chunk
                if when is None and marker.encode() in seen:
                    when = time.monotonic() - start
                    break
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
    finally:
        if when is not None and marker != "KILN-FIO-END":
            proc.kill()
        try:
            rest, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        seen += rest or b""
    if when is None:
        raise RepetitionFailed(f"{cmd[0]} never printed {marker!r}; output tail:\n"
                               f"{seen.decode(errors='replace')[-2000:]}")
    return when, seen.decode(errors="replace")


def guest_fio(vmm, root, data, fmt):
    cmdline = "console=ttyS0 root=/dev/vda ro quiet init=/usr/local/sbin/kiln-fio"
    if fmt == "qcow2":
        overlay = data.with_name("overlay.qcow2")
        overlay.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(data), "-F", "raw",
                        str(overlay)], check=True)
        data = overlay
    _, out = run_until(vmm_command(vmm, root, data, cmdline, fmt), "KILN-FIO-END", 600)
    # Found anywhere in the output: a kernel message may share the line (the console is shared).
    results = {m[0]: fio_metric(*m) for m in
               re.findall(r"KILN-FIO (\w+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)", out)}
    if len(results) != len(JOBS):
        raise RepetitionFailed(f"{vmm}: fio results missing; output tail:\n{out[-2000:]}")
    return results


def host_fio(data):
    results = {}
    for name, rw, bs, depth in JOBS:
        out = subprocess.run(["fio", f"--name={name}", f"--filename={data}", "--direct=0",
                              "--ioengine=io_uring", f"--rw={rw}", f"--bs={bs}",
                              f"--iodepth={depth}", "--runtime=8", "--time_based",
                              "--output-format=terse", "--terse-version=3"],
                             capture_output=True, text=True, check=True)
        fields = out.stdout.strip().splitlines()[-1].split(";")
        results[name] = fio_metric(name, fields[6], fields[7], fields[47])
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="repetitions of each measurement")
    ap.add_argument("--tmp", default=None, help="directory for the images (default: a tmpfs dir)")
    ap.add_argument("--only", choices=("fio", "boot"), help="run one half of the benchmark")
    ap.add_argument("--format", choices=("raw", "qcow2"), default="raw",
                    help="the guests' data disk: the raw file, or a qcow2 overlay over it")
    args = ap.parse_args()
    if not (DEBIAN / "rootfs.img").exists():
        sys.exit("blk bench: .cache/rootfs is missing; run scripts/mkrootfs")
    tmp = pathlib.Path(tempfile.mkdtemp(dir=args.tmp))
    try:
        root, data = tmp / "rootfs.img", tmp / "data.img"
        subprocess.run(["cp", "--sparse=always", str(DEBIAN / "rootfs.img"), str(root)], check=True)
        with open(data, "wb") as f:  # written, not sparse: reads hit real pages
            block = b"\x5a" * (1 << 20)
            for _ in range(DATA_MIB):
                f.write(block)
        units = {"randread": "IOPS", "seqread": "MiB/s", "seqwrite": "MiB/s"}
        if args.only != "boot":
            def fio(who):
                result = host_fio(data) if who == "host" else guest_fio(who, root, data, args.format)
                print(f"fio {who}: {result}", flush=True)
                return result

            who = ("kiln", "kiln-noseccomp", "qemu")
            runs = interleaved(who if args.format == "qcow2" else ("host", *who), fio, args.runs)
            table(f"blk benchmark, fio on a {args.format} disk: {args.runs} runs each, "
                  "interleaved; median [min-max]",
                  {f"{name} ({units[name]})": {who: [r[name] for r in rs] for who, rs in runs.items()}
                   for name, *_ in JOBS}, fmt="{:.0f}", higher_is_better=True)
        if args.only != "fio":
            def boot(vmm):
                t = run_until(vmm_command(vmm, root, None, "console=ttyS0 root=/dev/vda ro"),
                              "login:", 400)[0]
                print(f"boot {vmm}: {t:.1f} s", flush=True)
                return t

            table(f"blk benchmark, Debian boot: {args.runs} runs each, interleaved",
                  {"Debian boot to login (s)": interleaved(("kiln", "kiln-noseccomp", "qemu"), boot,
                                                          args.runs)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
