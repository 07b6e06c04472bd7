# SPDX-License-Identifier: Apache-2.0
"""firecracker-go-sdk's launch, replayed as its machine.go and handlers.go do it: the process
flags it passes, the log and metrics FIFOs it makes before anything reads them, its requests in
its order with its bodies (logger with show_level, metrics, machine-config with smt,
boot-source, the root drive and a NIC with rate limiters, vsock, MMDS, InstanceStart), then a snapshot and a load into a fresh
process started the same way. The FIFOs are read the way the SDK reads them: from a thread that
opens them after kiln has."""
import json
import os
import subprocess
import threading
import time

from conftest import Shell, in_ns
from fcapi import call, wait_for_socket

BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off kiln.test="


class FifoReader(threading.Thread):
    """The SDK's captureFifoToFile: opens @path for reading (blocking until a writer exists,
    which kiln already is) and keeps what it reads."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.data, self.lock = path, b"", threading.Lock()
        self.start()

    def run(self):
        with open(self.path, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                with self.lock:
                    self.data += chunk

    def wait_for(self, needle, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if needle in self.data:
                    return self.data.decode(errors="replace")
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not in {self.path}: {self.data[-2000:]!r}")


def start(kiln, netns, d, vm_id):
    """StartVMM: the SDK's VMCommandBuilder with --api-sock and --id (and --no-seccomp, its
    default without a filter), then CreateLogFilesHandler's FIFOs and the logger and metrics."""
    sock = d / "api.sock"
    sh = Shell(in_ns(netns, kiln, "--api-sock", sock, "--id", vm_id, "--no-seccomp"), ready=False)
    wait_for_socket(sock, sh.proc)
    log, metrics = d / "log.fifo", d / "metrics.fifo"
    os.mkfifo(log)
    os.mkfifo(metrics)
    assert call(sock, "PUT", "/logger", {"log_path": str(log), "level": "Debug", "show_level": True,
                                         "show_log_origin": False}) == (204, None)
    assert call(sock, "PUT", "/metrics", {"metrics_path": str(metrics)}) == (204, None)
    return sh, sock, FifoReader(log), FifoReader(metrics)


def test_go_sdk_launch_logs_metrics_snapshot_and_load(kvm, kiln, bzimage, initrd, netns, tmp_path):
    rootfs = tmp_path / "rootfs.ext4"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(rootfs), "32M"], check=True)
    first = tmp_path / "first"
    first.mkdir()
    sh, sock, log, metrics = start(kiln, netns, first, "sdk-vm-1")
    try:
        for path, body in [
            ("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "smt": True,
                                 "track_dirty_pages": False}),
            ("/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                              "boot_args": BOOT_ARGS}),
            ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(rootfs), "is_root_device": True,
                                "is_read_only": False, "rate_limiter": {
                                    "bandwidth": {"size": 64 << 20, "one_time_burst": 0, "refill_time": 1000},
                                    "ops": {"size": 10000, "refill_time": 1000}}}),
            ("/network-interfaces/1", {"iface_id": "1", "host_dev_name": "ktap0",
                                       "guest_mac": "06:00:0A:09:00:02",
                                       "rx_rate_limiter": {"bandwidth": {"size": 1 << 30, "refill_time": 1000}},
                                       "tx_rate_limiter": None}),
            ("/vsock", {"vsock_id": "vsock0", "guest_cid": 3, "uds_path": str(first / "v.sock")}),
            ("/mmds/config", {"network_interfaces": ["1"], "version": "V2"}),
            ("/mmds", {"latest": {"meta-data": {"instance-id": "sdk-vm-1"}}}),
        ]:
            assert call(sock, "PUT", path, body) == (204, None), path
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (204, None)
        sh.wait_ready()
        assert call(sock, "GET", "/")[1]["state"] == "Running"
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && ping -c 1 -W 5 10.9.0.1",
                 timeout=60)
        # The log: Firecracker's lines with the level, from the FIFO nobody read at first.
        text = log.wait_for(b"InstanceStart")
        assert any(" [sdk-vm-1:" in l and ":DEBUG]" in l for l in text.splitlines()), text[-2000:]
        # Metrics: the line written at InstanceStart, then FlushMetrics'.
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        lines = [json.loads(l) for l in metrics.wait_for(b"block_rootfs").splitlines() if l.strip()]
        assert "net_1" in lines[-1] and "entropy" in lines[-1], lines[-1]

        # CreateSnapshot: paused, then a Full snapshot.
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (204, None)
        assert call(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full",
                                                      "snapshot_path": str(tmp_path / "vm.snap"),
                                                      "mem_file_path": str(tmp_path / "vm.mem")}) == (204, None)
    finally:
        sh.close()

    # A new process started as the SDK starts it, then LoadSnapshotHandler's request.
    second = tmp_path / "second"
    second.mkdir()
    sh, sock, log, metrics = start(kiln, netns, second, "sdk-vm-2")
    try:
        assert call(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(tmp_path / "vm.snap"),
            "mem_backend": {"backend_type": "File", "backend_path": str(tmp_path / "vm.mem")},
            "enable_diff_snapshots": False, "resume_vm": True,
            "vsock_override": {"uds_path": str(second / "v.sock")}}) == (204, None)
        assert call(sock, "GET", "/")[1]["state"] == "Running"
        assert "KILN-SDK-42" in sh.check("echo KILN-SDK-$((6 * 7))", timeout=120)
        log.wait_for(b"snapshot")
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        metrics.wait_for(b"block_rootfs")
        assert sh.poweroff() == 0
    finally:
        sh.close()
