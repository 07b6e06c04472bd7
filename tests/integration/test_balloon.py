# SPDX-License-Identifier: Apache-2.0
"""virtio-balloon through Firecracker's API: the guest fills and frees memory, the host inflates
the balloon and kiln's resident set drops by about the inflated size; statistics arrive at the
configured interval; deflate_on_oom lets the guest take memory back under pressure; free page
reporting and free page hinting return what the guest frees without inflating; bad values are
refused."""
import time

import pytest

from conftest import Shell, run_kiln
from fcapi import call, wait_for_socket

MEM_MIB = 512


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def boot(kiln, bzimage, initrd, tmp_path, balloon):
    sock = tmp_path / "api.sock"
    sh = Shell([kiln, "--api-sock", sock], ready=False)
    wait_for_socket(sock, sh.proc)
    for path, body in [("/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                                         "boot_args": "console=ttyS0 kiln.test="}),
                       ("/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB}),
                       ("/balloon", balloon),
                       ("/actions", {"action_type": "InstanceStart"})]:
        assert call(sock, "PUT", path, body) == (204, None), path
    sh.wait_ready()
    sh.check("mkdir -p /fill && mount -t tmpfs -o size=400m none /fill")
    return sh, sock


def wait_stats(sock, done, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status, stats = call(sock, "GET", "/balloon/statistics")
        assert status == 200, stats
        if done(stats):
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.5)


def test_inflate_returns_memory_stats_and_deflate_on_oom(kvm, kiln, bzimage, initrd, tmp_path):
    sh, sock = boot(kiln, bzimage, initrd, tmp_path,
                    {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1})
    try:
        # Statistics at the configured interval: the guest's totals, refreshed.
        first = wait_stats(sock, lambda s: "total_memory" in s)
        assert first["total_memory"] > (MEM_MIB - 100) << 20, first
        sh.check("ls / > /dev/null")  # new processes: page faults the next statistics count
        wait_stats(sock, lambda s: s.get("minor_faults", 0) > first["minor_faults"])
        # The guest touches 300 MiB and frees it: kiln's resident set grew, and stays grown.
        sh.check("dd if=/dev/zero of=/fill/x bs=1M count=300 2>/dev/null && rm /fill/x", timeout=300)
        before = rss_mib(sh.proc.pid)
        assert call(sock, "PATCH", "/balloon", {"amount_mib": 256}) == (204, None)
        stats = wait_stats(sock, lambda s: s["actual_mib"] >= 256, timeout=300)
        assert stats["target_mib"] == 256
        after = rss_mib(sh.proc.pid)
        assert before - after > 150, (before, after)  # most of the 256 MiB came back
        assert call(sock, "GET", "/balloon")[1] == {"amount_mib": 256, "deflate_on_oom": True,
                                                    "stats_polling_interval_s": 1}
        # Memory pressure with most of the RAM in the balloon: the guest deflates and survives.
        assert call(sock, "PATCH", "/balloon", {"amount_mib": 420}) == (204, None)
        wait_stats(sock, lambda s: s["actual_mib"] >= 400, timeout=300)
        sh.check("dd if=/dev/zero of=/fill/y bs=1M count=200 2>/dev/null && sync", timeout=300)
        assert call(sock, "GET", "/balloon/statistics")[1]["actual_mib"] < 400
        sh.check("rm /fill/y")
        # Bad updates are refused and change nothing.
        for body, message in [({"amount_mib": 100000}, "is not in [0, 512]"),
                              ({"amount_mib": "lots"}, "expected an integer"),
                              ({"amount": 1}, "unknown field")]:
            status, reply = call(sock, "PATCH", "/balloon", body)
            assert status == 400 and message in reply["fault_message"], reply
        assert call(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2}) == (204, None)
        assert call(sock, "PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": False})[0] == 400
        # Back to nothing: the balloon deflates.
        assert call(sock, "PATCH", "/balloon", {"amount_mib": 0}) == (204, None)
        wait_stats(sock, lambda s: s["actual_pages"] == 0, timeout=300)
        assert sh.poweroff() == 0
    finally:
        sh.close()


def test_free_page_reporting(kvm, kiln, bzimage, initrd, tmp_path):
    sh, sock = boot(kiln, bzimage, initrd, tmp_path,
                    {"amount_mib": 0, "deflate_on_oom": False, "free_page_reporting": True})
    try:
        sh.check("dd if=/dev/zero of=/fill/x bs=1M count=300 2>/dev/null", timeout=300)
        full = rss_mib(sh.proc.pid)
        sh.check("rm /fill/x")
        deadline = time.monotonic() + 120
        while full - rss_mib(sh.proc.pid) < 150:
            assert time.monotonic() < deadline, (full, rss_mib(sh.proc.pid))
            time.sleep(1)
        status, reply = call(sock, "GET", "/balloon/statistics")
        assert status == 400 and "not enabled" in reply["fault_message"], reply
        assert sh.poweroff() == 0
    finally:
        sh.close()


def test_free_page_hinting(kvm, kiln, bzimage, initrd, tmp_path):
    """A hinting run (PATCH /balloon/hinting/start): the guest hints its free pages, kiln gives
    them back, the guest says STOP and kiln answers DONE itself (acknowledge_on_stop's default);
    the status follows each step."""
    sh, sock = boot(kiln, bzimage, initrd, tmp_path,
                    {"amount_mib": 0, "deflate_on_oom": False, "free_page_hinting": True})
    try:
        assert call(sock, "GET", "/balloon/hinting/status") == (200, {"host_cmd": 0})
        sh.check("dd if=/dev/zero of=/fill/x bs=1M count=300 2>/dev/null && rm /fill/x", timeout=300)
        full = rss_mib(sh.proc.pid)
        assert call(sock, "PATCH", "/balloon/hinting/start", "") == (204, None)  # no body: ack on
        deadline = time.monotonic() + 120
        while call(sock, "GET", "/balloon/hinting/status")[1] != {"host_cmd": 1, "guest_cmd": 0}:
            assert time.monotonic() < deadline, call(sock, "GET", "/balloon/hinting/status")
            time.sleep(0.5)
        assert full - rss_mib(sh.proc.pid) > 150, (full, rss_mib(sh.proc.pid))
        # A second run gets the next command id; stop ends it whatever the guest said.
        assert call(sock, "PATCH", "/balloon/hinting/start", {"acknowledge_on_stop": False}) == (204, None)
        assert call(sock, "GET", "/balloon/hinting/status")[1]["host_cmd"] == 3
        assert call(sock, "PATCH", "/balloon/hinting/stop", "") == (204, None)
        assert call(sock, "GET", "/balloon/hinting/status")[1]["host_cmd"] == 1
        sh.check("dd if=/dev/zero of=/fill/y bs=1M count=100 2>/dev/null && rm /fill/y", timeout=300)
        assert sh.poweroff() == 0
    finally:
        sh.close()


@pytest.mark.parametrize("value,message", [
    ("amount=1G", "--balloon: balloon: 1024 MiB is more than the guest's 512 MiB"),
    ("amount=lots", "\"lots\" is not a SIZE"),
    ("deflate_on_oom=on", "--balloon needs amount=SIZE"),
    ("amount=1M,stats=-1", "\"-1\" is not a statistics interval"),
    ("amount=1M,hinting=on", "\"hinting=on\" is not amount=SIZE"),
])
def test_bad_balloon_values(kiln, bzimage, value, message):
    g = run_kiln(kiln, "run", "--kernel", bzimage, "--balloon", value, timeout=60)
    assert g.returncode == 2 and message in g.err, g
