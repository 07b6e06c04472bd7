#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vsock and balloon benchmark, kiln only (one guest, the test initramfs):

  - stream throughput host -> guest and guest -> host, and the round-trip time of 64-byte
    messages, over virtio-vsock (Firecracker's Unix-socket host side) next to the same over
    virtio-net user-mode networking (libslirp, hostfwd), in the same VM and run;
  - balloon: resident memory the host gets back per second of inflation (the guest first
    touches and frees the memory), through Firecracker's PATCH /balloon.

Run it where /dev/kvm works: `scripts/bench vsock` (it uses scripts/kvm-box on hosts without
hardware KVM). Times measured in the box are emulator times; only ratios carry over.
"""
import argparse
import json
import pathlib
import socket
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/integration"))
from conftest import Shell  # noqa: E402
from fcapi import call, vsock_connect, wait_for_socket  # noqa: E402

KILN = ROOT / "build/kiln"
KERNEL = ROOT / ".cache/kernel/cloud/vmlinuz"
INITRD = ROOT / ".cache/initramfs/test.cpio.gz"
FWD_SINK, FWD_ECHO = 15000, 15001


def connect_tcp(port):
    for _ in range(300):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("hostfwd: no listener in the guest")


def host_to_guest(sh, connect, listen_cmd, mib):
    """Mbit/s of @mib MiB from the host into a guest sink."""
    sh.check(f"({listen_cmd} > /dev/null) & true")
    time.sleep(1)  # slirp accepts on the host at once and resets if nobody listens yet
    s = connect()
    block = b"\0" * (1 << 20)
    start = time.monotonic()
    for _ in range(mib):
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the guest closes once it has everything
    secs = time.monotonic() - start
    s.close()
    sh.check("wait", timeout=600)
    return mib * 8 * 1.048576 / secs


def guest_to_host(sh, accept_sock, send_cmd, mib):
    """Mbit/s of @mib MiB from the guest to a host sink."""
    got = {}

    def sink():
        c, _ = accept_sock.accept()
        n, start = 0, None
        while True:
            chunk = c.recv(1 << 16)
            if start is None:
                start = time.monotonic()
            if not chunk:
                break
            n += len(chunk)
        got["rate"] = n * 8 / 1e6 / (time.monotonic() - start)
        c.close()

    t = threading.Thread(target=sink)
    t.start()
    sh.check(f"dd if=/dev/zero bs=1M count={mib} 2>/dev/null | {send_cmd}", timeout=900)
    t.join(timeout=600)
    return got["rate"]


def rtt_ms(s, rounds):
    msg = b"x" * 64
    samples = []
    for _ in range(rounds):
        t0 = time.monotonic()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(64 - len(got))
        samples.append((time.monotonic() - t0) * 1000)
    s.close()
    return statistics.median(samples)


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def balloon_rate(tmp, mib):
    """MiB of resident memory the host gets back per second of inflation."""
    sock = tmp / "api.sock"
    sh = Shell([KILN, "--api-sock", sock], ready=False)
    try:
        wait_for_socket(sock, sh.proc)
        for path, body in [("/boot-source", {"kernel_image_path": str(KERNEL), "initrd_path": str(INITRD),
                                             "boot_args": "console=ttyS0 quiet kiln.test="}),
                           ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 512}),
                           ("/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                                         "stats_polling_interval_s": 1}),
                           ("/actions", {"action_type": "InstanceStart"})]:
            assert call(sock, "PUT", path, body)[0] == 204, path
        sh.wait_ready()
        sh.check(f"mkdir /fill && mount -t tmpfs -o size=400m none /fill && "
                 f"dd if=/dev/zero of=/fill/x bs=1M count={mib + 40} 2>/dev/null && rm /fill/x",
                 timeout=600)
        before = rss_mib(sh.proc.pid)
        start = time.monotonic()
        call(sock, "PATCH", "/balloon", {"amount_mib": mib})
        while call(sock, "GET", "/balloon/statistics")[1]["actual_mib"] < mib:
            time.sleep(0.05)
        secs = time.monotonic() - start
        after = rss_mib(sh.proc.pid)
        sh.poweroff()
        return before - after, secs
    finally:
        sh.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=64, help="MiB per throughput run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-vsock-"))
    uds = tmp / "v.sock"
    sh = Shell([KILN, "run", "--kernel", KERNEL, "--initrd", INITRD, "--memory", "512M",
                "--cmdline", "console=ttyS0 quiet kiln.test=", "--vsock", f"cid=3,uds={uds}",
                "--net", f"user,hostfwd=tcp::{FWD_SINK}-:5000,hostfwd=tcp::{FWD_ECHO}-:6001"])
    rows = {}
    try:
        sh.check("ip link set eth0 up && udhcpc -q -i eth0 -s /etc/udhcpc.sh > /dev/null 2>&1",
                 timeout=120)
        sh.check("(vsockcat echo 6000 > /dev/null 2>&1 &); (nc -ll -p 6001 -e cat > /dev/null 2>&1 &); true")
        vsock_sink = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        vsock_sink.bind(f"{uds}_5001")
        vsock_sink.listen(4)
        tcp_sink = socket.socket()
        tcp_sink.bind(("127.0.0.1", 0))
        tcp_sink.listen(4)
        tcp_port = tcp_sink.getsockname()[1]
        runs = {k: [] for k in ("vsock h2g", "net h2g", "vsock g2h", "net g2h", "vsock rtt", "net rtt")}
        for _ in range(args.runs):
            runs["vsock h2g"].append(host_to_guest(sh, lambda: vsock_connect(uds, 5000),
                                                   "vsockcat listen 5000 < /dev/null", args.mib))
            runs["net h2g"].append(host_to_guest(sh, lambda: connect_tcp(FWD_SINK),
                                                 "nc -l -p 5000 < /dev/null", args.mib))
            runs["vsock g2h"].append(guest_to_host(sh, vsock_sink, "vsockcat connect 2 5001 > /dev/null",
                                                   args.mib))
            runs["net g2h"].append(guest_to_host(sh, tcp_sink, f"nc 10.0.2.2 {tcp_port}", args.mib))
            runs["vsock rtt"].append(rtt_ms(vsock_connect(uds, 6000), 200))
            runs["net rtt"].append(rtt_ms(connect_tcp(FWD_ECHO), 200))
        rows = {k: statistics.median(v) for k, v in runs.items()}
        sh.poweroff()
    finally:
        sh.close()
    freed, secs = balloon_rate(tmp, 256)
    print(f"vsock benchmark: {args.runs} runs, medians; {args.mib} MiB per stream run; 64-byte RTT x200")
    print(f"{'measure':34}{'vsock':>12}{'user-net':>12}{'vsock/net':>12}")
    for label, v, n in [("host -> guest (Mbit/s)", "vsock h2g", "net h2g"),
                        ("guest -> host (Mbit/s)", "vsock g2h", "net g2h"),
                        ("round trip (ms, lower is better)", "vsock rtt", "net rtt")]:
        print(f"{label:34}{rows[v]:12.1f}{rows[n]:12.1f}{rows[v] / rows[n]:12.3f}")
    print(f"balloon: 256 MiB inflated in {secs:.2f} s; resident set fell {freed:.0f} MiB "
          f"({freed / secs:.0f} MiB/s)")
    print(json.dumps({**rows, "balloon_freed_mib": freed, "balloon_secs": secs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
