# SPDX-License-Identifier: Apache-2.0
"""Firecracker's process flags and JSON configuration file (`kiln --no-api --config-file`):
a VM described the way Firecracker users describe it boots with its drives, entropy device and
machine configuration, logs to --log-path; bad files and flags are refused with one line that
names the key or flag, exit 2, before anything starts. (The Debian root-device flow is in
test_debian.py.)"""
import json
import subprocess

import pytest

from conftest import Guest

BASE_BOOT = {"kernel_image_path": None, "boot_args": None, "initrd_path": None}


def run(kiln, *args, timeout=240):
    proc = subprocess.run([str(kiln), *map(str, args)], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)
    return Guest(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def write_config(path, config):
    path.write_text(json.dumps(config, indent=2))
    return path


def test_config_file_boots_with_drives_entropy_and_machine_config(kvm, kiln, bzimage, initrd, tmp_path):
    data = tmp_path / "data.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(data), "32M"], check=True)
    log = tmp_path / "kiln.log"
    log.write_text("")  # Firecracker's log path must exist (a file or a named pipe)
    config = write_config(tmp_path / "vm.json", {
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                        "boot_args": "console=ttyS0 kiln.test=disks"},
        "drives": [{"drive_id": "data_1", "path_on_host": str(data), "is_root_device": False,
                    "is_read_only": False, "partuuid": None, "cache_type": "Unsafe",
                    "io_engine": "Async", "rate_limiter": None}],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": False,
                           "track_dirty_pages": False},
        "entropy": {},
        "network-interfaces": [], "balloon": None, "vsock": None, "logger": None,
        "metrics": None, "mmds-config": None,
    })
    g = run(kiln, "--no-api", "--id", "fc-test-1", "--boot-timer", "--log-path", log,
            "--config-file", config)
    assert g.returncode == 0, g
    assert g.facts["vda_serial"] == "data_1", g           # the drive id is the disk's serial
    assert g.facts["vda_write_cache"] == "write through", g  # Unsafe: no VIRTIO_BLK_F_FLUSH
    assert g.facts["virtio_transport"] == "virtio-mmio", g  # as in Firecracker
    assert g.facts["rng"].startswith("virtio_rng"), g
    text = log.read_text()
    assert "guest boot time" in text and "microVM fc-test-1" in text, text


def test_enable_pci_and_serial_out_path(kvm, kiln, bzimage, initrd, tmp_path):
    """--enable-pci puts the devices on virtio-pci; "serial" sends the console to a file that
    does not exist yet (created), not to standard output."""
    data = tmp_path / "data.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(data), "32M"], check=True)
    serial = tmp_path / "serial.out"
    config = write_config(tmp_path / "vm.json", {
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                        "boot_args": "console=ttyS0 kiln.test=disks"},
        "drives": [{"drive_id": "data_1", "path_on_host": str(data), "is_root_device": False}],
        "entropy": {}, "serial": {"serial_out_path": str(serial)}})
    g = run(kiln, "--no-api", "--enable-pci", "--config-file", config)
    assert g.returncode == 0, g
    assert "KILN-FACT" not in g.out, g
    facts = Guest(g.returncode, serial.read_text(errors="replace"), g.err).facts
    assert facts["virtio_transport"] == "virtio-pci", facts
    assert facts["vda_serial"] == "data_1", facts
    assert facts["vda_write_cache"] == "write through", facts  # cache_type Unsafe: no flush


BAD_CONFIGS = [
    ({"boot-source": {"kernel_image_path": "K"}, "bogus": 1}, "unknown field \"bogus\""),
    ({}, "\"boot-source\" is required"),
    ({"boot-source": {"boot_args": "x"}}, "kernel_image_path"),
    ({"boot-source": {"kernel_image_path": "K"}, "machine-config": {"vcpu_count": 0, "mem_size_mib": 128}},
     "\"vcpu_count\": 0 is not in [1, 32]"),
    ({"boot-source": {"kernel_image_path": "K"}, "machine-config": {"vcpu_count": 1}}, "mem_size_mib"),
    ({"boot-source": {"kernel_image_path": "K"}, "machine-config": {"vcpu_count": "2", "mem_size_mib": 128}},
     "vcpu_count"),
    ({"boot-source": {"kernel_image_path": "K"}, "drives": [
        {"drive_id": "a", "path_on_host": "/x", "is_root_device": True},
        {"drive_id": "b", "path_on_host": "/y", "is_root_device": True}]}, "A root block device already exists! (\"a\" and \"b\" are both root devices)"),
    ({"boot-source": {"kernel_image_path": "K"}, "drives": [
        {"drive_id": "bad id", "path_on_host": "/x", "is_root_device": False}]}, "\"drive_id\": \"bad id\""),
    ({"boot-source": {"kernel_image_path": "K"}, "drives": [
        {"drive_id": "a", "path_on_host": "/x", "is_root_device": False, "io_engine": "Fast"}]},
     "\"io_engine\": \"Fast\" is not Sync or Async"),
    ({"boot-source": {"kernel_image_path": "K"}, "drives": [
        {"drive_id": "a", "path_on_host": "/x", "is_root_device": False,
         "rate_limiter": {"bandwidth": {"size": -1, "refill_time": 1}}}]},
     "\"rate_limiter\": \"bandwidth\": \"size\": -1 is negative"),
    ({"boot-source": {"kernel_image_path": "K"}, "network-interfaces": [
        {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz:00:00:00:00:00"}]}, "\"guest_mac\""),
    ({"boot-source": {"kernel_image_path": "K"}, "vsock": {"guest_cid": 3}},
     "\"vsock\": \"uds_path\" is required"),
    ({"boot-source": {"kernel_image_path": "K"}, "balloon": {"amount_mib": 1, "deflate_on_oom": True,
                                                            "free_page_hinting": "yes"}},
     "\"free_page_hinting\": expected true or false"),
    ({"boot-source": {"kernel_image_path": "K"}, "metrics": {"path": "/m"}},
     "\"metrics\": unknown field \"path\""),
    ({"boot-source": {"kernel_image_path": "K"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128,
                                                                  "huge_pages": "1G"}},
     "\"huge_pages\": unknown variant `1G`, expected `None` or `2M`"),
]


@pytest.mark.parametrize("config,message", BAD_CONFIGS, ids=[str(i) for i in range(len(BAD_CONFIGS))])
def test_bad_config_files(kiln, tmp_path, config, message):
    path = write_config(tmp_path / "vm.json", config)
    g = run(kiln, "--no-api", "--config-file", path, timeout=60)
    assert g.returncode == 2, g
    assert message in g.err and g.err.startswith(f"kiln: --config-file {path}: "), g
    assert len(g.err.strip().splitlines()) == 1, g


def test_malformed_and_duplicate_json(kiln, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"boot-source": {"kernel_image_path": "K"')
    g = run(kiln, "--no-api", "--config-file", bad, timeout=60)
    assert g.returncode == 2 and "line " in g.err, g
    bad.write_text('{"boot-source": {"kernel_image_path": "K"}, "boot-source": {}}')
    g = run(kiln, "--no-api", "--config-file", bad, timeout=60)
    assert g.returncode == 2 and "duplicate object key" in g.err, g


@pytest.mark.parametrize("args,message", [
    (["--no-api", "--api-sock", "/tmp/fc.sock"], "--no-api and --api-sock exclude each other"),
    (["--api-sock", "/tmp/fc.sock", "--config-file", "/x.json"], "--config-file /x.json: "),
    (["--api-sock", "/tmp/fc.sock", "--mmds-size-limit", "lots"], "--mmds-size-limit: \"lots\" is not a number of bytes"),
    (["--api-sock", "/tmp/fc.sock", "--http-api-max-payload-size", "0"],
     "--http-api-max-payload-size: \"0\" is not a number of bytes"),
    (["--api-sock", "/tmp/fc.sock", "--metadata", "/no/such.json"], "--metadata /no/such.json: "),
    (["--no-api"], "--no-api needs --config-file PATH"),
    (["--no-api", "--config-file", "/x.json", "--level", "Loud"], "--level: \"Loud\" is not Error"),
    (["--no-api", "--config-file", "/x.json", "--id", "no spaces"], "--id: \"no spaces\""),
    (["--api-sock", "/tmp/fc.sock", "--no-seccomp", "--seccomp-filter", "f"],
     "--no-seccomp and --seccomp-filter exclude each other"),
    (["--api-sock", "/tmp/fc.sock", "--start-time-us", "soon"],
     "--start-time-us: \"soon\" is not a number of microseconds"),
    (["--no-api", "--bogus"], "unknown flag \"--bogus\""),
    (["--no-api", "--config-file"], "--config-file: missing value"),
])
def test_bad_flags(kiln, args, message):
    g = run(kiln, *args, timeout=60)
    assert g.returncode == 2, g
    assert message in g.err and len(g.err.strip().splitlines()) == 1, g


def test_bad_seccomp_filter_file(kiln, tmp_path):
    """A --seccomp-filter file that is not valid stops kiln before it serves anything: exit 2,
    one line naming the file, the thread category and the rule."""
    f = tmp_path / "filters.json"
    allow = {"default_action": "allow", "filter_action": "trap", "filter": []}
    f.write_text(json.dumps({"vmm": allow, "worker": allow, "vcpu": {
        "default_action": "trap", "filter_action": "allow",
        "filter": [{"syscall": "read"}, {"syscall": "ioctl", "args": [{"index": 1, "type": "word",
                                                                      "op": "eq", "val": 1}]}]}}))
    g = run(kiln, "--api-sock", tmp_path / "api.sock", "--seccomp-filter", f, timeout=60)
    assert g.returncode == 2, g
    assert f"--seccomp-filter: {f}: \"vcpu\" rule 1 (\"ioctl\"): args[0]: \"type\"" in g.err, g
    assert len(g.err.strip().splitlines()) == 1 and not (tmp_path / "api.sock").exists(), g


def test_version_and_help(kiln):
    g = run(kiln, "--version", timeout=60)
    assert g.returncode == 0 and g.out.startswith("kiln "), g
    g = run(kiln, "--no-api", "--help", timeout=60)
    assert g.returncode == 0 and "--config-file PATH" in g.out, g


def test_logger_fifo_without_reader_formats_and_module(kiln, tmp_path):
    """As firecracker-go-sdk launches it: --log-path is a FIFO nobody reads yet (it opens, and
    kiln never blocks on it), --show-level and --show-log-origin give Firecracker's line format;
    then PUT /logger to a file that does not exist yet (created), with a module filter."""
    import os
    import re
    import socket
    import time

    from fcapi import call, wait_for_socket

    fifo, sock, log = tmp_path / "log.fifo", tmp_path / "api.sock", tmp_path / "new.log"
    os.mkfifo(fifo)
    proc = subprocess.Popen([str(kiln), "--api-sock", sock, "--id", "vm-7", "--level", "Debug", "--log-path",
                             fifo, "--show-level", "--show-log-origin"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        assert call(sock, "GET", "/")[0] == 200
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert call(sock, "GET", "/version")[0] == 200
            deadline = time.monotonic() + 30
            text = b""
            while b"/version" not in text and time.monotonic() < deadline:
                try:
                    text += os.read(reader, 65536)
                except BlockingIOError:
                    time.sleep(0.05)
        finally:
            os.close(reader)
        line = next(l for l in text.decode().splitlines() if "/version" in l)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[vm-7:kiln:DEBUG:fc/router\.c:\d+\] "
                            r"api: GET /version \(0 bytes\)", line), line

        # PUT /logger: a new file, no level shown, only the module "fc" and what is under it.
        assert call(sock, "PUT", "/logger", {"log_path": str(log), "show_level": False,
                                             "show_log_origin": False, "module": "fc"}) == (204, None)
        assert call(sock, "GET", "/machine-config")[0] == 200
        assert call(sock, "PUT", "/logger", {"module": "virtio"}) == (204, None)
        assert call(sock, "GET", "/vm/config")[0] == 200  # logged by fc: filtered out now
        lines = log.read_text().splitlines()
        assert any(re.fullmatch(r"\S+ \[vm-7:kiln\] api: GET /machine-config \(0 bytes\)", l) for l in lines), lines
        assert not any("/vm/config" in l for l in lines), lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_payload_limits_metadata_and_snapshot_version(kiln, tmp_path):
    """--http-api-max-payload-size, --mmds-size-limit and --metadata as Firecracker's main.rs
    takes them; --snapshot-version and --describe-snapshot print kiln's snapshot format."""
    from fcapi import call, wait_for_socket

    g = run(kiln, "--snapshot-version", timeout=60)
    assert g.returncode == 0 and g.out.strip() == "v2", g
    notsnap = tmp_path / "not.snap"
    notsnap.write_bytes(b"x" * 100)
    g = run(kiln, "--describe-snapshot", notsnap, timeout=60)
    assert g.returncode == 1 and "--describe-snapshot: " in g.err and str(notsnap) in g.err, g

    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"latest": {"meta-data": {"instance-id": "i-123"}}}))
    sock = tmp_path / "api.sock"
    proc = subprocess.Popen([str(kiln), "--api-sock", sock, "--metadata", meta, "--http-api-max-payload-size", "200",
                             "--mmds-size-limit", "120"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        assert call(sock, "GET", "/mmds") == (200, {"latest": {"meta-data": {"instance-id": "i-123"}}})
        assert call(sock, "PUT", "/mmds", {"k": "v" * 300}) == (400, {
            "fault_message": "Request payload is larger than the limit of 200 bytes allowed by server."})
        status, body = call(sock, "PUT", "/mmds", {"k": "v" * 150})  # fits the API, not the store
        assert status == 413, body
        assert call(sock, "GET", "/mmds")[1]["latest"]["meta-data"]["instance-id"] == "i-123"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_huge_pages_2m(kvm, kiln, bzimage, initrd, tmp_path):
    """machine-config huge_pages "2M": the guest's RAM comes from the host's 2 MiB hugetlbfs pool,
    reserved at InstanceStart; with too small a pool InstanceStart is refused (no SIGBUS later)."""
    from conftest import Shell
    from fcapi import call, wait_for_socket

    def meminfo(key):
        for line in open("/proc/meminfo"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(key)

    pool = "/proc/sys/vm/nr_hugepages"
    old = open(pool).read().strip()
    try:
        for pages, ok in ((0, False), (80, True)):
            with open(pool, "w") as f:
                f.write(str(pages))
            sock = tmp_path / f"api{pages}.sock"
            sh = Shell([kiln, "--api-sock", sock], ready=False)
            try:
                wait_for_socket(sock, sh.proc)
                for path, body in [("/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                                                     "boot_args": "console=ttyS0 kiln.test="}),
                                   ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"})]:
                    assert call(sock, "PUT", path, body) == (204, None), path
                status, body = call(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
                if not ok:
                    assert status == 400 and "in 2 MiB huge pages" in body["fault_message"], body
                    continue
                assert status == 204, body
                sh.wait_ready()
                used = meminfo("HugePages_Total") - meminfo("HugePages_Free") + meminfo("HugePages_Rsvd")
                assert used >= 64, used  # 128 MiB of guest RAM: 64 pages taken or reserved
                assert "KILN-HUGE-42" in sh.check("echo KILN-HUGE-$((6 * 7))")
                assert sh.poweroff() == 0
            finally:
                sh.close()
    finally:
        with open(pool, "w") as f:
            f.write(old)
