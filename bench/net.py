#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Network benchmark: iperf3 between the host and a guest in both directions, and ping round
trips, for kiln and for QEMU (-M q35, virtio-net-pci, no vhost: this host has no
/dev/vhost-net) on the same tap in a network namespace; then the same iperf3 runs over
user-mode networking (libslirp in both: kiln --net user, QEMU -netdev user) through a port
forwarded from the host's loopback; all in one run.

  tap host->guest    iperf3 -c GUEST (the guest receives), Mbit/s
  tap guest->host    iperf3 -c GUEST -R (the guest sends), Mbit/s
  tap ping           the host pings the guest, 20 pings 0.2 s apart, average ms
  user host->guest   through hostfwd 127.0.0.1:15201 -> guest:5201, Mbit/s
  user guest->host   the same with -R, Mbit/s

The guest is the test initramfs plus iperf3 (scripts/test-initramfs --binary), init test
serve-net. Times in the box are emulator times; only the ratios carry over.
Run with `scripts/bench net [--seconds N] [--runs N]`.
"""
import argparse
import json
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL = ROOT / ".cache/kernel/cloud/vmlinuz"
INITRD = ROOT / ".cache/initramfs/bench-net.cpio.gz"
NS, TAP, HOST_IP, GUEST_IP, FWD = "kiln-bench", "kbtap0", "10.9.8.1", "10.9.8.2", 15201


def sh(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def in_ns(*cmd):
    return ["ip", "netns", "exec", NS, *map(str, cmd)]


def vmm_command(vmm, mode):
    ip = f" kiln.ip={GUEST_IP}/24" if mode == "tap" else ""
    cmdline = f"console=ttyS0 kiln.test=serve-net{ip}"
    if vmm == "kiln":
        net = f"tap={TAP}" if mode == "tap" else f"user,hostfwd=tcp:127.0.0.1:{FWD}-:5201"
        cmd = [ROOT / "build/kiln", "run", "--kernel", KERNEL, "--initrd", INITRD, "--memory", "512M",
               "--cmdline", cmdline, "--net", net]
    else:
        netdev = (f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off" if mode == "tap"
                  else f"user,id=n0,hostfwd=tcp:127.0.0.1:{FWD}-:5201")
        cmd = ["qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-cpu", "host", "-m", "512M",
               "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
               "-kernel", KERNEL, "-initrd", INITRD, "-append", cmdline,
               "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    return in_ns(*cmd) if mode == "tap" else [str(c) for c in cmd]


def start(vmm, mode, log):
    """Start @vmm with its console in the file @log; return once the guest's iperf3 serves."""
    out = open(log, "wb")
    proc = subprocess.Popen(vmm_command(vmm, mode), stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 300
    while b"KILN-NET-READY" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"net bench: {vmm} ({mode}) never got ready; console tail:\n"
                     f"{log.read_bytes().decode(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return proc


def iperf(mode, reverse, seconds):
    target = ["-c", GUEST_IP] if mode == "tap" else ["-c", "127.0.0.1", "-p", str(FWD)]
    cmd = ["iperf3", *target, "-t", str(seconds), "-J", *(["-R"] if reverse else [])]
    out = subprocess.run(in_ns(*cmd) if mode == "tap" else cmd, capture_output=True, text=True,
                         timeout=seconds + 120)
    if out.returncode:
        sys.exit(f"net bench: {' '.join(cmd)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def ping():
    out = sh(*in_ns("busybox", "ping", "-c", "20", "-i", "0.2", GUEST_IP), timeout=120).stdout
    return float(re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out).group(1))


def measure(vmm, mode, seconds, log):
    proc = start(vmm, mode, log)
    try:
        res = {"host->guest": iperf(mode, False, seconds), "guest->host": iperf(mode, True, seconds)}
        if mode == "tap":
            res["ping"] = ping()
    finally:
        proc.kill()
        proc.wait()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=8, help="length of each iperf3 run")
    ap.add_argument("--runs", type=int, default=1, help="runs per VMM and mode (medians reported)")
    ap.add_argument("--only", choices=["tap", "user"], help="one mode only")
    args = ap.parse_args()
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    sh("ip", "netns", "add", NS)
    tmp = tempfile.mkdtemp(prefix="kiln-bench-net-")
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        sh("ip", "-n", NS, "tuntap", "add", "dev", TAP, "mode", "tap")
        sh("ip", "-n", NS, "addr", "add", f"{HOST_IP}/24", "dev", TAP)
        sh("ip", "-n", NS, "link", "set", TAP, "up")
        rows = {}
        for mode in [args.only] if args.only else ["tap", "user"]:
            for vmm in ("kiln", "qemu"):
                runs = [measure(vmm, mode, args.seconds, pathlib.Path(tmp) / f"{vmm}-{mode}.log")
                        for _ in range(args.runs)]
                for metric in runs[0]:
                    rows.setdefault((mode, metric), {})[vmm] = statistics.median(r[metric] for r in runs)
                print(f"{mode} {vmm}: " + ", ".join(f"{m} {v[vmm]:.2f}" for (md, m), v in rows.items()
                                                     if md == mode), flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'metric':<30}{'kiln':>10}{'qemu':>10}{'kiln/qemu':>11}")
    for (mode, metric), v in rows.items():
        unit = "ms" if metric == "ping" else "Mbit/s"
        print(f"{mode + ' ' + metric + ' (' + unit + ')':<30}{v['kiln']:>10.2f}{v['qemu']:>10.2f}"
              f"{v['kiln'] / v['qemu']:>11.2f}")


if __name__ == "__main__":
    main()
