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
serve-net. Every figure is the median of --runs guests (default 5) per VMM and mode, booted
interleaved across the VMMs, with its min-max; a guest that never serves or whose iperf3 or ping
fails is reported and run again (bench/common.py). Times in the box are emulator times; only
the ratios carry over. Run with `scripts/bench net [--seconds N] [--runs N] [--only tap|user]`.
"""
import argparse
import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

from common import RepetitionFailed, interleaved, table

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL = ROOT / ".cache/kernel/cloud/vmlinuz"
INITRD = ROOT / ".cache/initramfs/bench-net.cpio.gz"
NS, TAP, HOST_IP, GUEST_IP, FWD = "kiln-bench", "kbtap0", "10.9.8.1", "10.9.8.2", 15201
VMMS = ("kiln", "qemu")


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
            proc.wait()
            raise RepetitionFailed(f"{vmm} ({mode}) never got ready; console tail:\n"
                                   f"{log.read_bytes().decode(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return proc


def guest_tool(cmd, timeout):
    """Run @cmd (iperf3 or ping against the guest); its stdout, or RepetitionFailed."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RepetitionFailed(f"{' '.join(cmd)}: no end within {timeout} s") from None
    if out.returncode:
        raise RepetitionFailed(f"{' '.join(cmd)} exited {out.returncode}:\n"
                               f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return out.stdout


def iperf(mode, reverse, seconds):
    target = ["-c", GUEST_IP] if mode == "tap" else ["-c", "127.0.0.1", "-p", str(FWD)]
    cmd = ["iperf3", *target, "-t", str(seconds), "-J", *(["-R"] if reverse else [])]
    out = guest_tool(in_ns(*cmd) if mode == "tap" else cmd, seconds + 120)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6


def ping():
    out = guest_tool(in_ns("busybox", "ping", "-c", "20", "-i", "0.2", GUEST_IP), 120)
    m = re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out)
    if not m:
        raise RepetitionFailed(f"no round-trip summary in ping's output:\n{out[-2000:]}")
    return float(m.group(1))


def measure(vmm, mode, seconds, log):
    proc = start(vmm, mode, log)
    try:
        res = {"host->guest": iperf(mode, False, seconds),
               "guest->host": iperf(mode, True, seconds)}
        if mode == "tap":
            res["ping"] = ping()
        if proc.poll() is not None:
            raise RepetitionFailed(f"{vmm} ({mode}) exited {proc.returncode} during the run")
    finally:
        proc.kill()
        proc.wait()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=8, help="length of each iperf3 run")
    ap.add_argument("--runs", type=int, default=5, help="guests per VMM and mode (interleaved)")
    ap.add_argument("--only", choices=["tap", "user"], help="one mode only")
    args = ap.parse_args()
    modes = [args.only] if args.only else ["tap", "user"]
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    sh("ip", "netns", "add", NS)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-net-"))
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        sh("ip", "-n", NS, "tuntap", "add", "dev", TAP, "mode", "tap")
        sh("ip", "-n", NS, "addr", "add", f"{HOST_IP}/24", "dev", TAP)
        sh("ip", "-n", NS, "link", "set", TAP, "up")

        def one(name):
            vmm, mode = name.split()
            res = measure(vmm, mode, args.seconds, tmp / f"{vmm}-{mode}.log")
            print(f"{name}: " + ", ".join(f"{m} {v:.2f}" for m, v in res.items()), flush=True)
            return res

        runs = interleaved([f"{vmm} {mode}" for mode in modes for vmm in VMMS], one, args.runs)
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    def rows(metrics, modes):
        return {f"{mode} {m} ({unit})": {vmm: [r[m] for r in runs[f"{vmm} {mode}"]] for vmm in VMMS}
                for mode in modes for m, unit in metrics}

    title = f"net benchmark: {args.runs} runs each, interleaved; median [min-max]"
    table(f"{title}; iperf3 for {args.seconds} s",
          rows([("host->guest", "Mbit/s"), ("guest->host", "Mbit/s")], modes),
          higher_is_better=True)
    if "tap" in modes:
        table(f"{title}; 20 pings", rows([("ping", "ms")], ["tap"]), fmt="{:.2f}")


if __name__ == "__main__":
    main()
