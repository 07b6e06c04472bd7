# SPDX-License-Identifier: Apache-2.0
"""Rate limiters (Firecracker's token buckets) measured from a real guest: a drive's bandwidth
and operations, a NIC's transmit and receive bandwidth over a tap, the entropy device's
bandwidth, each before and after a PATCH; the throttled-event counters in the metrics.

Every limit is checked from below against the guest's own clock: a bucket of SIZE tokens per
second that starts full lets TOTAL tokens through in no less than (TOTAL - SIZE) / SIZE seconds
(10% off for the clock's 10 ms ticks). From above only "it finishes", and "never throttled" (the
metrics' counter) after a PATCH lifts it, since the emulator's speed is not the limiter's."""
import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import Shell, in_ns
from fcapi import call, wait_for_socket

HERE = Path(__file__).parent
BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off kiln.test="
KIB = 1024
MIB = 1 << 20


def bucket(size, ms=1000):
    return {"size": size, "refill_time": ms}


def shown(bucket):
    """@bucket as GET /vm/config shows it (Firecracker's form): every key."""
    return {"size": bucket["size"], "one_time_burst": None, "refill_time": bucket["refill_time"]}


def timed(sh, cmd, timeout=300):
    """Run @cmd in the guest; seconds it took by the guest's clock (/proc/uptime, 10 ms)."""
    out = sh.check(f"a=$(cut -d' ' -f1 /proc/uptime); {cmd}; b=$(cut -d' ' -f1 /proc/uptime); "
                   "echo SECONDS=$a,$b", timeout=timeout)
    a, b = out.rsplit("SECONDS=", 1)[1].split()[0].split(",")
    return float(b) - float(a)


def at_least(seconds, total, size, rate):
    """@seconds is what a bucket of @size tokens refilled at @rate per second allows for @total."""
    floor = (total - size) / rate
    print(f"{total} tokens at {rate}/s, bucket {size}: {seconds:.2f} s (floor {floor:.2f} s)")
    assert seconds >= 0.9 * floor, f"{total} tokens in {seconds:.2f} s: faster than {rate}/s"


def test_drive_nic_and_entropy_limits_with_patch(kvm, kiln, bzimage, initrd, netns, tmp_path):
    sock = tmp_path / "api.sock"
    metrics = tmp_path / "metrics.json"
    metrics.write_text("")
    data = tmp_path / "data.img"
    data.write_bytes(b"\0" * (8 * MIB))
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd), "boot_args": BOOT_ARGS},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
        "drives": [{"drive_id": "data", "path_on_host": str(data), "is_root_device": False,
                    "rate_limiter": {"bandwidth": bucket(MIB)}}],
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "ktap0", "mtu": 1400,
                                "tx_rate_limiter": {"bandwidth": bucket(256 * KIB)},
                                "rx_rate_limiter": {"bandwidth": bucket(256 * KIB)}}],
        "entropy": {"rate_limiter": {"bandwidth": bucket(4 * KIB)}},
        "metrics": {"metrics_path": str(metrics)}}))
    sh = Shell(in_ns(netns, kiln, "--api-sock", sock, "--config-file", config))
    try:
        wait_for_socket(sock, sh.proc)
        vm_config = call(sock, "GET", "/vm/config")[1]
        assert vm_config["drives"][0]["rate_limiter"] == {"bandwidth": shown(bucket(MIB)), "ops": None}, vm_config

        # Drive, bytes: 4 MiB at 1 MiB/s, the first MiB free.
        read = "dd if=/dev/vda of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null"
        at_least(timed(sh, read), 4 * MIB, MIB, MIB)
        # PATCH: a bucket far larger than the read; the same read is never throttled (counted
        # between two flushes: each metrics line holds what happened since the one before).
        assert call(sock, "PATCH", "/drives/data", {"drive_id": "data",
                                                    "rate_limiter": {"bandwidth": bucket(1 << 30)}}) == (204, None)
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        before = len(metrics.read_text().splitlines())
        sh.check(read)
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        since = [json.loads(line) for line in metrics.read_text().splitlines()[before:]]
        assert sum(line["block_data"]["rate_limiter_throttled_events"] for line in since) == 0, \
            "the PATCH did not lift the limit"
        # PATCH: bytes off (size 0), operations on: 40 requests at 10/s, the first 10 free.
        assert call(sock, "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": bucket(0, 0), "ops": bucket(10)}}) == (204, None)
        at_least(timed(sh, "dd if=/dev/vda of=/dev/null bs=4k count=40 iflag=direct 2>/dev/null"), 40, 10, 10)
        # A bucket turned off shows as null, as in Firecracker.
        assert call(sock, "GET", "/vm/config")[1]["drives"][0]["rate_limiter"] == {
            "bandwidth": None, "ops": shown(bucket(10))}
        # A bad PATCH changes nothing.
        assert call(sock, "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": -1, "refill_time": 1}}})[0] == 400
        assert call(sock, "GET", "/vm/config")[1]["drives"][0]["rate_limiter"]["ops"] == shown(bucket(10))

        # Entropy: 16 KiB at 4 KiB/s, the first 4 KiB free (the kernel's own hwrng reads only
        # take tokens from this one).
        at_least(timed(sh, "dd if=/dev/hwrng of=/dev/null bs=1k count=16 2>/dev/null"), 16 * KIB, 4 * KIB, 4 * KIB)

        # NIC, guest to host: 1 MiB at 256 KiB/s, timed by the receiver from its first byte.
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && "
                 "head -c 1048576 /dev/urandom > /tmp/tx")
        assert "\n1400" in "\n" + sh.check("cat /sys/class/net/eth0/mtu")  # "mtu" reached the guest
        recv = subprocess.Popen(in_ns(netns, sys.executable, HERE / "nethelp.py", "recv", "10.9.0.1", 5002),
                                stdout=subprocess.PIPE, text=True)
        try:
            assert recv.stdout.readline().strip() == "listening"
            sh.check("nc 10.9.0.1 5002 < /tmp/tx", timeout=300)
            _, size, seconds = recv.stdout.readline().split()
            assert recv.wait(timeout=60) == 0
        finally:
            recv.kill()
        assert int(size) == MIB
        at_least(float(seconds), MIB, 256 * KIB, 256 * KIB)

        # Host to guest: 1 MiB at 256 KiB/s, timed by the guest from before it listens.
        sh.check("(a=$(cut -d' ' -f1 /proc/uptime); nc -l -p 5001 | wc -c > /tmp/rx.n; "
                 "b=$(cut -d' ' -f1 /proc/uptime); echo $a,$b > /tmp/rx.t) & true")
        sent = subprocess.run(in_ns(netns, sys.executable, HERE / "nethelp.py", "send", "10.9.0.2", 5001, 1),
                              capture_output=True, text=True, timeout=300)
        assert sent.returncode == 0, sent.stderr
        times = sh.check("while [ ! -s /tmp/rx.t ]; do sleep 0.2; done; cat /tmp/rx.n /tmp/rx.t", timeout=300)
        n, t = times.split()[-2:]
        assert int(n) == MIB
        a, b = map(float, t.split(","))
        at_least(b - a, MIB, 256 * KIB, 256 * KIB)
        # PATCH the transmit side only: the receive side keeps its limit.
        assert call(sock, "PATCH", "/network-interfaces/eth0", {
            "iface_id": "eth0", "tx_rate_limiter": {"bandwidth": bucket(0, 0)}}) == (204, None)
        nic = call(sock, "GET", "/vm/config")[1]["network-interfaces"][0]
        assert nic["rx_rate_limiter"] == {"bandwidth": shown(bucket(256 * KIB)), "ops": None}, nic
        assert nic["tx_rate_limiter"] is None, nic  # no bucket on: Firecracker shows none

        # The throttled-event counters, Firecracker's names.
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        lines = [json.loads(line) for line in metrics.read_text().splitlines()]
        total = lambda group, field: sum(line[group][field] for line in lines)  # noqa: E731
        assert total("block_data", "rate_limiter_throttled_events") > 0, lines[-1]
        assert total("net_eth0", "tx_rate_limiter_throttled") > 0, lines[-1]
        assert total("net_eth0", "rx_rate_limiter_throttled") > 0, lines[-1]
        assert total("entropy", "entropy_rate_limiter_throttled") > 0, lines[-1]
        assert sh.poweroff() == 0
    finally:
        sh.close()


def test_kiln_run_limits(kvm, kiln, bzimage, initrd, tmp_path):
    """The same buckets from `kiln run`'s own options."""
    data = tmp_path / "data.img"
    data.write_bytes(b"\0" * (4 * MIB))
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--cmdline", "console=ttyS0",
                "--disk", f"{data},ops=20/1s", "--rng=bw=2K/1s,bw-burst=1K"])
    try:
        at_least(timed(sh, "dd if=/dev/vda of=/dev/null bs=4k count=60 iflag=direct 2>/dev/null"), 60, 20, 20)
        at_least(timed(sh, "dd if=/dev/hwrng of=/dev/null bs=1k count=8 2>/dev/null"), 8 * KIB, 3 * KIB, 2 * KIB)
        assert sh.poweroff() == 0
    finally:
        sh.close()


def test_serial_output_limit(kvm, kiln, bzimage, initrd, tmp_path):
    """Firecracker's /serial rate_limiter: what the guest writes beyond the bucket is dropped
    (the guest never waits) and counted in the metrics' "uart" group. The file never holds
    more than the bucket plus its refill over the host time kiln ran."""
    sock, out, metrics = tmp_path / "api.sock", tmp_path / "serial.out", tmp_path / "metrics.json"
    rate = 2 * KIB
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                        "boot_args": "console=ttyS0 reboot=k panic=1 pci=off kiln.test=flood"},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        "serial": {"serial_out_path": str(out), "rate_limiter": bucket(rate)},
        "metrics": {"metrics_path": str(metrics)}}))
    start = time.monotonic()
    proc = subprocess.Popen([kiln, "--api-sock", sock, "--config-file", config],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        deadline = time.monotonic() + 300
        # The socket is served before the configuration file is applied: the serial file may
        # not exist yet.
        while not out.exists() or b"kiln-flood" not in out.read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, "no flood line got through"
            time.sleep(0.5)
        time.sleep(2)
        size, elapsed = out.stat().st_size, time.monotonic() - start
        print(f"serial: {size} bytes in {elapsed:.1f} s at {rate} B/s")
        assert size <= rate + rate * elapsed, f"{size} bytes in {elapsed:.1f} s: more than {rate}/s"
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        lines = [json.loads(line) for line in metrics.read_text().splitlines()]
        uart = lambda field: sum(line["uart"][field] for line in lines)  # noqa: E731
        assert uart("rate_limiter_dropped_bytes") > 0, lines[-1]
        assert uart("write_count") > 0, lines[-1]
    finally:
        proc.kill()
        proc.wait()
