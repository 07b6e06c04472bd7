#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boot benchmark: kiln against QEMU (-M microvm and -M q35), and kvmtool when its lkvm binary is
given (--kvmtool PATH) or on PATH, on the same KVM, same kernel and initramfs, side by side in one
run. Reports medians and kiln/peer ratios of

  - wall time from exec to the first KVM_RUN (strace -f -ttt timestamps, the same for all VMMs)
  - wall time from exec to the guest's /init: the kernel runs the initramfs's shell as init
    (rdinit=), which prints KILN-INIT-READY and sleeps; the same for every VMM (the test
    initramfs's own /init loads modules and writes Firecracker's boot-timer address, which
    kvmtool's machine does not have)
  - VMM CPU time (user+sys) up to /init
  - VMM overhead memory: resident set minus the resident part of the guest RAM mapping

kiln runs twice, with its seccomp filters (as always by default) and with --no-seccomp: the
kiln/kiln-noseccomp ratio is what the filters cost. Every figure is the median of --runs runs
(default 5) interleaved across the VMMs, with its min-max (bench/common.py).

kvmtool is not in Debian 12's archive: build lkvm from its source to get its column. Its command
line always adds "noapic noacpi" (it has no ACPI tables and cannot power the guest off).

Run it where /dev/kvm works: `scripts/bench` (it uses scripts/kvm-box on hosts without hardware
KVM). Times measured in the box are emulator times; only the ratios carry over.
"""
import argparse
import os
import pathlib
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

from common import RepetitionFailed, interleaved, table

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = {"vmlinuz": ROOT / ".cache/kernel/cloud/vmlinuz",  # bzImage: the kernel decompresses itself
           "vmlinux": ROOT / ".cache/kernel/cloud/vmlinux"}  # ELF with a PVH note: no decompression
INITRD = ROOT / ".cache/initramfs/test.cpio.gz"
MARKER = b"KILN-INIT-READY"
# quiet: the guest prints only what /init prints, so the serial port does not dominate. The
# marker is split by '' so that the command line itself, which a kernel with earlyprintk (as
# kvmtool always gives) prints before it parses quiet, does not match.
CMDLINE = 'console=ttyS0 quiet rdinit=/bin/sh -- -c "echo KILN-INIT-\'\'READY; exec sleep 86400"'
MEM_MIB = 512


def vmm_commands(kernel, kvmtool=None):
    """{name: command}; kvmtool loads only bzImages, so it gets vmlinuz whatever @kernel is."""
    kiln = [str(ROOT / "build/kiln"), "run", "--kernel", str(kernel), "--initrd", str(INITRD),
            "--cmdline", CMDLINE, "--memory", f"{MEM_MIB}M"]
    qemu = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", f"{MEM_MIB}M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-kernel", str(kernel), "-initrd", str(INITRD), "-append", CMDLINE]
    cmds = {
        "kiln": kiln,
        "kiln-noseccomp": kiln + ["--no-seccomp"],  # the filters' cost: kiln/noseccomp
        "qemu-microvm": qemu[:1] + ["-M", "microvm"] + qemu[1:],
        "qemu-q35": qemu[:1] + ["-M", "q35"] + qemu[1:],
    }
    if kvmtool:
        cmds["kvmtool"] = [kvmtool, "run", "-k", str(KERNELS["vmlinuz"]), "-i", str(INITRD), "-m", str(MEM_MIB),
                           "-c", "1", "-p", CMDLINE]
    return cmds


def guest_ram_rss_kb(pid):
    """Resident KiB of the largest anonymous mapping at least as big as guest RAM."""
    best = 0
    size = rss = 0
    anon = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                if anon and size >= MEM_MIB * 1024:
                    best = max(best, rss)
                parts = line.split()
                anon = len(parts) < 6 or parts[5].startswith("[anon")
                size = rss = 0
            elif line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    if anon and size >= MEM_MIB * 1024:
        best = max(best, rss)
    return best


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def one_run(cmd, timeout=120):
    """Boot once; return (ms to /init, VMM cpu ms, overhead KiB). RuntimeError when the VMM
    exits or @timeout seconds pass before the marker."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    seen = b""
    try:
        while MARKER not in seen:
            if not select.select([proc.stdout], [], [], max(0, start + timeout - time.monotonic()))[0]:
                raise RuntimeError(f"{cmd[0]}: no /init within {timeout} s: {seen[-2000:]!r}")
            chunk = proc.stdout.read1(65536)
            if not chunk:
                raise RuntimeError(f"{cmd[0]} exited before /init: {seen[-2000:]!r}")
            seen += chunk
        to_init = (time.monotonic() - start) * 1000
        cpu = proc_cpu_ms(proc.pid)
        overhead = proc_rss_kb(proc.pid) - guest_ram_rss_kb(proc.pid)
        return to_init, cpu, overhead
    finally:
        proc.kill()
        proc.wait()


def first_kvm_run_ms(cmd, timeout=300):
    """Exec to first KVM_RUN, from strace timestamps (strace slows every VMM alike); the VMM is
    killed as soon as strace has logged its first KVM_RUN."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as log:
        proc = subprocess.Popen(["strace", "-f", "-ttt", "-e", "trace=execve,ioctl", "-o",
                                 log.name, *cmd], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        t0 = t1 = None
        try:
            while t1 is None and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
                for line in open(log.name):
                    m = re.match(r"^\d+\s+(\d+\.\d+) (\w+)\(", line)
                    if not m:
                        continue
                    if t0 is None and m.group(2) == "execve":
                        t0 = float(m.group(1))
                    if "KVM_RUN" in line:
                        t1 = float(m.group(1))
                        break
        finally:
            proc.kill()
            proc.wait()
        if t0 is None or t1 is None:
            raise RuntimeError(f"no execve/KVM_RUN in strace of {cmd[0]}")
        return (t1 - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kvmtool", default=shutil.which("lkvm"),
                    help="kvmtool's lkvm binary (default: lkvm on PATH; none: no kvmtool column)")
    ap.add_argument("--kernel", choices=sorted(KERNELS), default="vmlinuz",
                    help="the cloud kernel as bzImage (default) or as ELF vmlinux booted through "
                    "its PVH entry (kvmtool keeps the bzImage)")
    ap.add_argument("--vmms", help="comma-separated subset of the VMMs to run")
    args = ap.parse_args()
    if args.kvmtool and not os.access(args.kvmtool, os.X_OK):
        ap.error(f"--kvmtool {args.kvmtool}: not an executable file")
    cmds = vmm_commands(KERNELS[args.kernel], args.kvmtool)
    if args.vmms:
        wanted = args.vmms.split(",")
        unknown = set(wanted) - set(cmds)
        if unknown:
            ap.error(f"--vmms: unknown {', '.join(sorted(unknown))} (these exist: {', '.join(cmds)})")
        cmds = {name: cmd for name, cmd in cmds.items() if name in wanted}

    def measure(name):
        try:
            return one_run(cmds[name]) + (first_kvm_run_ms(cmds[name]),)
        except RuntimeError as e:
            raise RepetitionFailed(e) from e

    runs = interleaved(list(cmds), measure, args.runs)
    metrics = ["to /init ms", "cpu ms to /init", "VMM overhead KiB", "first KVM_RUN ms (strace)"]
    samples = {m: {name: [r[i] for r in runs[name]] for name in cmds} for i, m in enumerate(metrics)}
    table(f"boot benchmark: {args.runs} runs each, interleaved; median [min-max]; kernel "
          f"{args.kernel}{' (kvmtool: vmlinuz)' if args.kernel != 'vmlinuz' and 'kvmtool' in cmds else ''}, "
          f"{MEM_MIB} MiB, 1 vCPU", samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
