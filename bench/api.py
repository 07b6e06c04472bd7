#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""API benchmark: how soon kiln's Firecracker API accepts requests and how soon a guest booted
through it reaches /init, next to `kiln run` and to QEMU's QMP socket, in one run. Reports
medians of

  - exec to the API socket accepting a connection: wall time, and the VMM's CPU time then
    (all its threads, from /proc/PID/task/*/schedstat; Firecracker's specification is at most
    8 ms of CPU). QEMU: exec to its QMP socket accepting (-S -qmp unix:...).
  - InstanceStart to the guest's /init (the test initramfs prints KILN-INIT-READY), and for
    `kiln run` exec to /init; each with the VMM's CPU time.

Run it where /dev/kvm works: `scripts/bench api` (it uses scripts/kvm-box on hosts without
hardware KVM). Times measured in the box are emulator times; only the ratios carry over.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests/integration"))
from fcapi import call  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
KILN = ROOT / "build/kiln"
KERNEL = ROOT / ".cache/kernel/cloud/vmlinuz"
INITRD = ROOT / ".cache/initramfs/test.cpio.gz"
MARKER = b"KILN-INIT-READY"
CMDLINE = "console=ttyS0 quiet kiln.test=hang"
MEM_MIB = 256


def cpu_ms(pid):
    """CPU time of every thread of @pid so far, in ms (schedstat: nanoseconds on the CPU)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e6


def wait_accepting(path, proc, timeout=60):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"VMM exited ({proc.returncode}) before its socket accepted")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                return
        except OSError:
            time.sleep(0.0005)
    raise RuntimeError(f"{path} did not accept within {timeout} s")


def read_until_marker(proc, timeout=300):
    seen = b""
    deadline = time.monotonic() + timeout
    while MARKER not in seen:
        chunk = proc.stdout.read1(65536)
        if not chunk or time.monotonic() > deadline:
            raise RuntimeError(f"exited or timed out before /init: {seen[-2000:]!r}")
        seen += chunk


def socket_ready(cmd, path):
    """exec -> @path accepting: (wall ms, VMM cpu ms)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_accepting(path, proc)
        return (time.monotonic() - start) * 1000, cpu_ms(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def api_boot(sock):
    """Configure through the API, then InstanceStart -> /init: (wall ms, VMM cpu ms in between)."""
    proc = subprocess.Popen([str(KILN), "--api-sock", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_accepting(sock, proc)
        for path, body in [("/boot-source", {"kernel_image_path": str(KERNEL), "initrd_path": str(INITRD),
                                             "boot_args": CMDLINE}),
                           ("/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB})]:
            status, reply = call(sock, "PUT", path, body)
            if status != 204:
                raise RuntimeError(f"PUT {path}: {status} {reply}")
        cpu0, start = cpu_ms(proc.pid), time.monotonic()
        status, reply = call(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        if status != 204:
            raise RuntimeError(f"InstanceStart: {status} {reply}")
        read_until_marker(proc)
        return (time.monotonic() - start) * 1000, cpu_ms(proc.pid) - cpu0
    finally:
        proc.kill()
        proc.wait()


def run_boot():
    """`kiln run`: exec -> /init (wall ms, cpu ms)."""
    start = time.monotonic()
    proc = subprocess.Popen([str(KILN), "run", "--kernel", str(KERNEL), "--initrd", str(INITRD),
                             "--cmdline", CMDLINE, "--memory", f"{MEM_MIB}M"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        read_until_marker(proc)
        return (time.monotonic() - start) * 1000, cpu_ms(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kiln-bench-api-")
    rows = {}

    def measure(name, fn):
        runs = []
        for i in range(args.runs):
            runs.append(fn(i))
        rows[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))

    def sock(i, what):
        path = os.path.join(tmp, f"{what}-{i}.sock")
        if os.path.exists(path):
            os.unlink(path)
        return path

    measure("kiln --api-sock: exec -> socket accepting", lambda i: socket_ready(
        [str(KILN), "--api-sock", sock(i, "kiln")], os.path.join(tmp, f"kiln-{i}.sock")))
    measure("qemu -S -qmp: exec -> socket accepting", lambda i: socket_ready(
        ["qemu-system-x86_64", "-accel", "kvm", "-M", "microvm", "-m", f"{MEM_MIB}M", "-nodefaults",
         "-no-user-config", "-display", "none", "-S", "-qmp", f"unix:{sock(i, 'qmp')},server=on,wait=off"],
        os.path.join(tmp, f"qmp-{i}.sock")))
    measure("kiln API: InstanceStart -> /init", lambda i: api_boot(sock(i, "boot")))
    measure("kiln run: exec -> /init", lambda i: run_boot())
    print(f"API benchmark: {args.runs} runs each, medians; kernel {KERNEL.name}, {MEM_MIB} MiB, 1 vCPU")
    print(f"{'measure':48}{'wall ms':>12}{'cpu ms':>12}")
    for name, (wall, cpu) in rows.items():
        print(f"{name:48}{wall:12.2f}{cpu:12.2f}")
    k, q = rows["kiln --api-sock: exec -> socket accepting"], rows["qemu -S -qmp: exec -> socket accepting"]
    print(f"{'socket ready, kiln/QEMU':48}{k[0] / q[0]:12.3f}{k[1] / q[1]:12.3f}")
    a, r = rows["kiln API: InstanceStart -> /init"], rows["kiln run: exec -> /init"]
    print(f"{'to /init, API/kiln run':48}{a[0] / r[0]:12.3f}{a[1] / r[1]:12.3f}")
    print(json.dumps({k: {"wall_ms": v[0], "cpu_ms": v[1]} for k, v in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
