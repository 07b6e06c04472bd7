# SPDX-License-Identifier: Apache-2.0
"""Snapshots (Firecracker's PUT /snapshot/create and /snapshot/load, `kiln restore`,
`kiln rebase-snap`): a busy guest is snapshotted, killed and restored and carries on (its
counter, its files in memory and on disk, a TCP session over a tap); ten restores of one
snapshot run side by side; a Diff chain merged onto its base; the Uffd backend with a
page-fault handler; and every damaged or mismatched snapshot is refused with a message while
nothing is left half-restored. Live migration (PUT /migrate to `kiln restore --incoming`):
over plain TCP when asked for by name, over TLS with a pre-shared key and with X.509
certificates, the destination's disk being the file its own --config-file names; a wrong key,
an untrusted certificate, a destination whose configuration differs from the stream's or lacks
what it names are refused and the guest carries on at the source."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

import pytest

from conftest import BUILD, ROOT, Shell, in_ns
from fcapi import call, open_files, snapshot, wait_for_socket

BOOT_ARGS = "console=ttyS0 reboot=k panic=1 kiln.test="
# The count is written to a new file renamed over the old one: a reader never sees it empty.
COUNTER = ("(i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; "
           "sleep 0.2; done) >/dev/null 2>&1 & true")


def start_api(kiln, sock, prefix=()):
    sh = Shell([*prefix, kiln, "--api-sock", sock, "--level", "Info"], ready=False)
    wait_for_socket(sock, sh.proc)
    return sh


def boot_api(kiln, sock, bzimage, initrd, mem=128, cpus=1, prefix=(), dirty=False, **extra):
    """A guest booted through the API to the test shell; @extra: path -> body to PUT first."""
    sh = start_api(kiln, sock, prefix)
    assert call(sock, "PUT", "/machine-config", {"vcpu_count": cpus, "mem_size_mib": mem,
                                                 "track_dirty_pages": dirty})[0] == 204
    assert call(sock, "PUT", "/boot-source", {"kernel_image_path": str(bzimage),
                                              "initrd_path": str(initrd),
                                              "boot_args": BOOT_ARGS})[0] == 204
    for path, body in extra.get("puts", []):
        assert call(sock, "PUT", path, body) == (204, None), path
    assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (204, None)
    sh.wait_ready()
    return sh


def restore(kiln, state, mem, *extra, prefix=()):
    """`kiln restore` with the console on stdio: a Shell typing into the restored guest."""
    return Shell([*prefix, kiln, "restore", "--snapshot", state, "--mem-file", mem, "--level",
                  "Info", *extra], ready=False)


def number(sh, cmd):
    """The number @cmd prints, read between tags: the console carries the echoed command and
    may carry kernel messages (a restored guest often says "hrtimer: interrupt took N ns")."""
    text = sh.check(f'echo "=N=$({cmd})=N="', timeout=120)
    return int(re.findall(r"=N=\s*(\d+)\s*=N=", text)[-1])


def sha(sh, path):
    return re.search(r"\b[0-9a-f]{64}\b", sh.check(f"sha256sum {path}")).group(0)


def count(sh):
    return number(sh, "cat /tmp/count")


def assert_counting(sh):
    first = count(sh)
    time.sleep(1.5)
    assert count(sh) > first, sh.err()


@pytest.fixture(scope="module")
def plain(kvm, kiln, bzimage, initrd, tmp_path_factory):
    """One snapshot of a 128 MiB guest whose counter runs and whose /tmp holds a known file."""
    d = tmp_path_factory.mktemp("plain")
    sh = boot_api(kiln, d / "api.sock", bzimage, initrd)
    try:
        sh.check(COUNTER)
        sh.check("dd if=/dev/urandom of=/tmp/data bs=1k count=2048 2>/dev/null")
        digest = sha(sh, "/tmp/data")
        time.sleep(1)
        snapshot(d / "api.sock", d / "state", d / "mem")
    finally:
        sh.close()
    return d / "state", d / "mem", digest


def test_restore_carries_on_counter_files_and_tcp(kvm, kiln, bzimage, initrd, netns, tmp_path):
    """Two vCPUs, a disk and a tap: after kill and restore the counter continues, the files in
    memory and on disk are intact, the clock has not gone back, and the TCP session to a server
    on the host (over the tap, whose host end outlives kiln) is the same connection."""
    rootfs = tmp_path / "rootfs.ext4"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(rootfs), "64M"], check=True)
    log = tmp_path / "echo.log"
    server = subprocess.Popen(in_ns(netns, "/usr/bin/python3", "-c", ECHO_SERVER, log),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = tmp_path / "api.sock"
    sh = boot_api(kiln, sock, bzimage, initrd, mem=256, cpus=2, prefix=in_ns(netns), puts=[
        ("/drives/data", {"drive_id": "data", "path_on_host": str(rootfs),
                          "is_root_device": False, "is_read_only": False}),
        ("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "ktap0"})])
    try:
        sh.check(COUNTER)
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up")
        sh.check("(while true; do echo tick; sleep 0.3; done) | nc 10.9.0.1 7000 > /tmp/echo.out 2>&1 & true")
        sh.check("mkdir -p /mnt && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/f bs=1k count=4096 2>/dev/null && sync")
        disk_sum = sha(sh, "/mnt/f")
        sh.check("cp /mnt/f /tmp/f")
        time.sleep(2)
        echoed = number(sh, "wc -l < /tmp/echo.out")
        assert echoed > 0, sh.check("cat /tmp/echo.out")
        before = number(sh, "date +%s")
        snapshot(sock, tmp_path / "state", tmp_path / "mem")
    finally:
        sh.close()
    assert sh.proc.returncode != 0  # killed, not shut down

    sh = restore(kiln, tmp_path / "state", tmp_path / "mem", prefix=in_ns(netns))
    try:
        assert_counting(sh)
        assert sha(sh, "/tmp/f") == disk_sum
        assert sha(sh, "/mnt/f") == disk_sum
        sh.check("echo after > /mnt/after && sync && cat /mnt/after")
        assert number(sh, "date +%s") >= before
        deadline = time.monotonic() + 60
        while number(sh, "wc -l < /tmp/echo.out") <= echoed + 3:
            assert time.monotonic() < deadline, sh.check("cat /tmp/echo.out; ps")
            time.sleep(1)
        assert log.read_text().split() == ["accepted"], "the guest had to reconnect"
        assert "snapshot" in sh.err() and "loaded" in sh.err()
    finally:
        sh.close()
        server.kill()
        server.wait()


# A TCP echo server that logs each connection it accepts (one line per accept).
ECHO_SERVER = """
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.1", 7000)); s.listen()
def serve(c):
    while (b := c.recv(4096)):
        c.sendall(b)
while True:
    c, _ = s.accept(); log.write("accepted\\n")
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def test_ten_restores_side_by_side(kiln, plain):
    state, mem, digest = plain
    shells = [restore(kiln, state, mem) for _ in range(10)]
    try:
        for sh in shells:
            assert sha(sh, "/tmp/data") == digest
        marks = [count(sh) for sh in shells]
        time.sleep(1)
        assert all(count(sh) > m for sh, m in zip(shells, marks))
        # Each is its own guest: a write in one is not seen by another.
        shells[0].check("echo mine > /tmp/only-0")
        assert shells[1].run("cat /tmp/only-0")[0] != 0
    finally:
        for sh in shells:
            sh.close()


def test_restores_side_by_side_with_network_and_vsock_overrides(kvm, kiln, bzimage, initrd, netns, tmp_path):
    """One snapshot of a guest with a tap and vsock, restored three times at once through PUT
    /snapshot/load: each copy on its own tap (network_overrides) and its own vsock socket
    (vsock_override), the snapshot's own tap and socket untouched; clock_realtime accepted."""
    from fcapi import vsock_connect

    sock = tmp_path / "api.sock"
    sh = boot_api(kiln, sock, bzimage, initrd, prefix=in_ns(netns), puts=[
        ("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "ktap0"}),
        ("/vsock", {"guest_cid": 3, "uds_path": str(tmp_path / "v.sock")})])
    try:
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up")
        sh.check("(vsockcat echo 6000 > /dev/null 2>&1 &) ; true")
        guest_then = number(sh, "date +%s")
        snapshot(sock, tmp_path / "state", tmp_path / "mem")
    finally:
        sh.close()
    for k in (1, 2, 3):
        subprocess.run(["ip", "-n", netns, "tuntap", "add", "dev", f"ktap{k}", "mode", "tap"], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", f"ktap{k}", "up"], check=True)
    time.sleep(3)
    copies = []
    try:
        for k in (1, 2, 3):
            api = tmp_path / f"api{k}.sock"
            c = start_api(kiln, api, prefix=in_ns(netns))
            copies.append(c)
            assert call(api, "PUT", "/snapshot/load", {
                "snapshot_path": str(tmp_path / "state"), "mem_file_path": str(tmp_path / "mem"),
                "resume_vm": True, "clock_realtime": k == 1,
                "network_overrides": [{"iface_id": "eth0", "host_dev_name": f"ktap{k}"}],
                "vsock_override": {"uds_path": str(tmp_path / f"v{k}.sock")}}) == (204, None)
            nic = call(api, "GET", "/vm/config")[1]["network-interfaces"][0]
            assert nic["host_dev_name"] == f"ktap{k}", nic
        for k, c in zip((1, 2, 3), copies):
            # Frames the copy sends arrive on its own tap.
            c.run("ping -c 2 -W 1 10.9.0.1", timeout=60)
            rx = subprocess.run(["ip", "netns", "exec", netns, "cat",
                                 f"/sys/class/net/ktap{k}/statistics/rx_packets"],
                                capture_output=True, text=True, check=True).stdout
            assert int(rx) > 0, (k, rx)
            s = vsock_connect(tmp_path / f"v{k}.sock", 6000)
            s.sendall(f"copy {k}\n".encode())
            assert s.recv(64) == f"copy {k}\n".encode()
            s.close()
        # The snapshot's own socket (left behind by the killed original) is served by no copy.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(str(tmp_path / "v.sock"))
        probe.close()
        # clock_realtime: the first copy's clock counts the seconds since the snapshot (where
        # the snapshot's KVM recorded real time; kiln says so when it did not).
        guest_now = number(copies[0], "date +%s")
        assert guest_now >= guest_then + 3 or "recorded no real time" in copies[0].err(), \
            (guest_then, guest_now, copies[0].err())
    finally:
        for c in copies:
            c.close()


def uffd_handler(tmp_path):
    exe = tmp_path / "uffd_handler"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe),
                    str(ROOT / "tests/tools/uffd_handler.c")], check=True)
    return exe


def test_uffd_backend(kiln, plain, tmp_path):
    """PUT /snapshot/load with a Uffd backend: the handler fills every page the guest touches."""
    state, mem, digest = plain
    handler_sock = tmp_path / "uffd.sock"
    handler = subprocess.Popen([str(uffd_handler(tmp_path)), str(handler_sock), str(mem)],
                               stderr=subprocess.PIPE)
    sock = tmp_path / "api.sock"
    sh = start_api(kiln, sock)
    try:
        deadline = time.monotonic() + 30
        while not handler_sock.exists():
            assert time.monotonic() < deadline and handler.poll() is None
            time.sleep(0.01)
        assert call(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(state), "resume_vm": True,
            "mem_backend": {"backend_type": "Uffd", "backend_path": str(handler_sock)}}) == (204, None)
        assert call(sock, "GET", "/")[1]["state"] == "Running"
        assert sha(sh, "/tmp/data") == digest
        assert_counting(sh)
    finally:
        sh.close()
        handler.wait(timeout=30)
    assert b"faults served" in handler.stderr.read()


def test_paused_load_then_resume_and_snapshot_again(kiln, plain, tmp_path):
    """resume_vm false: nothing runs until PATCH /vm; the restored VM can be snapshotted again
    and that snapshot restores too."""
    state, mem, digest = plain
    sock = tmp_path / "api.sock"
    sh = start_api(kiln, sock)
    try:
        assert call(sock, "PUT", "/snapshot/load", {"snapshot_path": str(state),
                                                    "mem_backend": {"backend_type": "File",
                                                                    "backend_path": str(mem)}}) == (204, None)
        assert call(sock, "GET", "/")[1]["state"] == "Paused"
        assert call(sock, "PUT", "/snapshot/load", {"snapshot_path": str(state),
                                                    "mem_file_path": str(mem)})[0] == 400
        assert call(sock, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
        sh.check("echo second > /tmp/second")
        snapshot(sock, tmp_path / "state2", tmp_path / "mem2")
    finally:
        sh.close()
    sh = restore(kiln, tmp_path / "state2", tmp_path / "mem2")
    try:
        assert sh.check("cat /tmp/second").strip().endswith("second")
        assert sha(sh, "/tmp/data") == digest
        assert_counting(sh)
    finally:
        sh.close()


def test_diff_snapshot_chain_merged_with_rebase_snap(kvm, kiln, bzimage, initrd, tmp_path):
    """track_dirty_pages: a Full snapshot, then two Diffs that hold only what changed; the diffs
    merged onto the base in order (kiln rebase-snap) restore the guest as of the last one."""
    sock = tmp_path / "api.sock"
    sh = boot_api(kiln, sock, bzimage, initrd, dirty=True)
    try:
        sh.check(COUNTER)
        snapshot(sock, tmp_path / "s0", tmp_path / "m0")
        sums = []
        for i in (1, 2):
            assert call(sock, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
            sh.check(f"dd if=/dev/urandom of=/tmp/stage{i} bs=1k count=1024 2>/dev/null")
            sums.append(sha(sh, f"/tmp/stage{i}"))
            snapshot(sock, tmp_path / f"s{i}", tmp_path / f"m{i}", kind="Diff")
    finally:
        sh.close()
    size = (tmp_path / "m0").stat().st_size
    for i in (1, 2):
        m = tmp_path / f"m{i}"
        assert m.stat().st_size == size
        # Sparse: far less than the guest's 128 MiB is data, but at least the new file.
        assert 1 << 20 <= m.stat().st_blocks * 512 < size // 4
    for i in (1, 2):
        subprocess.run([str(kiln), "rebase-snap", "--base-file", str(tmp_path / "m0"),
                        "--diff-file", str(tmp_path / f"m{i}")], check=True)
    sh = restore(kiln, tmp_path / "s2", tmp_path / "m0")
    try:
        for i in (1, 2):
            assert sha(sh, f"/tmp/stage{i}") == sums[i - 1]
        assert_counting(sh)
    finally:
        sh.close()


def rewrite(src, dst, edit):
    """Copy snapshot @src to @dst with @edit(bytearray) applied and the checksum made valid."""
    data = bytearray(src.read_bytes())
    edit(data)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    dst.write_bytes(bytes(data))
    return dst


def sections(data):
    """(name, instance, offset of the data, length) of each section of a format-2 file
    (include/kiln/snapshot.h: name[12], instance, version, reserved, length, then the data)."""
    off, end = 56, len(data) - 8
    while off < end:
        name, inst, _, _, length = struct.unpack_from("<12sIIIQ", data, off)
        yield name.rstrip(b"\0").decode(), inst, off + 32, length
        off += 32 + (length + 7) // 8 * 8


def lack_cpu_feature(data):
    """Claim every CPUID.7.0:EBX feature bit for vCPU 0: no host has them all."""
    for name, inst, off, length in sections(data):
        if name == "cpuid" and inst == 0:
            nent, = struct.unpack_from("<I", data, off)
            for e in range(nent):
                at = off + 8 + e * 40
                function, index = struct.unpack_from("<II", data, at)
                if function == 7 and index == 0:
                    struct.pack_into("<I", data, at + 16, 0xffffffff)
                    return
    raise AssertionError("no CPUID leaf 7 in the snapshot")


def newer_format(data):
    struct.pack_into("<I", data, 8, 3)


def newer_section(data):
    """The serial port's section as if a later kiln had written version 2 of it."""
    for name, inst, off, length in sections(data):
        if name == "uart_8250":
            struct.pack_into("<I", data, off - 16, 2)
            return
    raise AssertionError("no uart_8250 section in the snapshot")


def test_damaged_or_mismatched_snapshots_are_refused(kiln, plain, tmp_path):
    state, mem, _ = plain
    raw = state.read_bytes()
    cases = [
        ("truncated", lambda p: p.write_bytes(raw[:len(raw) // 2]), mem, "truncated"),
        ("corrupted", lambda p: p.write_bytes(raw[:100] + bytes([raw[100] ^ 1]) + raw[101:]), mem,
         "checksum mismatch"),
        ("format", lambda p: rewrite(state, p, newer_format), mem,
         "snapshot format 3 is newer than this kiln reads (1-2)"),
        ("section", lambda p: rewrite(state, p, newer_section), mem,
         'section "uart_8250" is version 2, newer than this kiln reads (1)'),
        ("not-a-snapshot", lambda p: p.write_bytes(b"hello" * 100), mem, "not a kiln snapshot"),
        ("cpu", lambda p: rewrite(state, p, lack_cpu_feature), mem, "lacks features"),
    ]
    short_mem = tmp_path / "short-mem"
    short_mem.write_bytes(mem.read_bytes()[:1 << 20])
    cases.append(("mem-size", lambda p: p.write_bytes(raw), short_mem, "not a regular file of"))
    for name, make, memfile, message in cases:
        bad = tmp_path / f"state-{name}"
        make(bad)
        proc = subprocess.run([str(kiln), "restore", "--snapshot", str(bad), "--mem-file",
                               str(memfile)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (name, proc.stderr)
        assert message in proc.stderr, (name, proc.stderr)

    # Through the API: each refusal is a 400 and leaves the process as it was, so a good load
    # still works afterwards.
    sock = tmp_path / "api.sock"
    sh = start_api(kiln, sock)
    try:
        for name, _, memfile, message in cases:
            status, body = call(sock, "PUT", "/snapshot/load", {
                "snapshot_path": str(tmp_path / f"state-{name}"), "resume_vm": True,
                "mem_backend": {"backend_type": "File", "backend_path": str(memfile)}})
            assert status == 400 and message in body["fault_message"], (name, body)
            assert call(sock, "GET", "/")[1]["state"] == "Not started"
        for body in ({"snapshot_path": str(state)},
                     {"snapshot_path": str(state), "mem_backend": {"backend_type": "Disk",
                                                                   "backend_path": str(mem)}},
                     {"snapshot_path": str(state), "mem_file_path": str(mem), "bogus": 1}):
            assert call(sock, "PUT", "/snapshot/load", body)[0] == 400, body
        assert call(sock, "PUT", "/snapshot/load", {"snapshot_path": str(state), "resume_vm": True,
                                                    "mem_file_path": str(mem)}) == (204, None)
        assert_counting(sh)
    finally:
        sh.close()


def test_snapshot_create_rules(kvm, kiln, bzimage, initrd, tmp_path):
    """Only a paused VM is snapshotted; Diff needs dirty tracking; a bad path is a 400."""
    sock = tmp_path / "api.sock"
    sh = boot_api(kiln, sock, bzimage, initrd)
    try:
        body = {"snapshot_path": str(tmp_path / "s"), "mem_file_path": str(tmp_path / "m")}
        status, reply = call(sock, "PUT", "/snapshot/create", body)
        assert status == 400 and "paused" in reply["fault_message"]
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (204, None)
        status, reply = call(sock, "PUT", "/snapshot/create", {**body, "snapshot_type": "Diff"})
        assert status == 400 and "track_dirty_pages" in reply["fault_message"]
        status, reply = call(sock, "PUT", "/snapshot/create",
                             {**body, "mem_file_path": "/nonexistent/dir/m"})
        assert status == 400 and "/nonexistent/dir/m" in reply["fault_message"]
        assert not (tmp_path / "s").exists()
        assert call(sock, "PUT", "/snapshot/create", body) == (204, None)
        assert call(sock, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
        sh.check("echo still-running")
    finally:
        sh.close()


def test_kiln_run_pauses_on_sigtstp_and_resumes_on_sigcont(kvm, kiln, bzimage, initrd):
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--cmdline",
                "console=ttyS0 kiln.test="])
    try:
        sh.check(COUNTER)
        sh.proc.send_signal(signal.SIGTSTP)
        time.sleep(1)
        seen = len(sh.out)
        sh.proc.stdin.write(b"echo RESUMED-$((6 * 7))\n")
        sh.proc.stdin.flush()
        time.sleep(3)
        sh._read_until(lambda: True, 1, "")
        assert b"RESUMED-42" not in sh.out[seen:] and sh.proc.poll() is None
        sh.proc.send_signal(signal.SIGCONT)
        sh._wait_for(b"RESUMED-42", 60, seen)
        assert_counting(sh)
    finally:
        sh.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dest_config(path, disk, mem, read_only=False, drive=True):
    """The destination's own --config-file: the source's guest (boot_api's) on this host's
    @disk. The kernel path is nowhere: a restore never opens it."""
    doc = {"boot-source": {"kernel_image_path": "/nonexistent/vmlinuz", "boot_args": BOOT_ARGS},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": mem}}
    if drive:
        doc["drives"] = [{"drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
                          "is_read_only": read_only}]
    path.write_text(json.dumps(doc))
    return path


def boot_with_disk(kiln, bzimage, initrd, tmp_path, mem):
    """A source guest booted through the API with a 32 MiB ext4 disk "data" at
    tmp_path/src-disk.ext4, its counter running; returns (shell, API socket, disk)."""
    disk = tmp_path / "src-disk.ext4"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(disk), "32M"], check=True)
    sock = tmp_path / "api.sock"
    src = boot_api(kiln, sock, bzimage, initrd, mem=mem, puts=[
        ("/drives/data", {"drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
                          "is_read_only": False})])
    src.check(COUNTER)
    return src, sock, disk


def wait_listening(dst, what="waiting for a migration"):
    deadline = time.monotonic() + 60
    while what not in dst.err():
        assert time.monotonic() < deadline and dst.proc.poll() is None, dst.err()
        time.sleep(0.05)


def psk_file(path, identity="kiln"):
    """A key file psktool writes: identity:hexkey, a random 32-byte key."""
    subprocess.run(["psktool", "-u", identity, "-p", str(path)], check=True, capture_output=True)
    return path


def certtool(*args, cwd):
    subprocess.run(["certtool", *map(str, args)], check=True, capture_output=True, cwd=cwd)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Certificate directories as QEMU's tls-creds-x509 reads them, made with certtool: a CA;
    dst (ca-cert.pem, server-cert.pem and server-key.pem for 127.0.0.1 and localhost), src
    (ca-cert.pem, client-cert.pem, client-key.pem); and two wrong sources: rogue, whose client
    certificate another CA signed, and blind, which trusts that other CA instead of ours."""
    d = tmp_path_factory.mktemp("pki")

    def ca(name):
        (d / f"{name}.info").write_text(f"cn = kiln test {name}\nca\ncert_signing_key\n"
                                       "expiration_days = 30\n")
        certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", f"{name}-key.pem", cwd=d)
        certtool("--generate-self-signed", "--load-privkey", f"{name}-key.pem", "--template",
                 f"{name}.info", "--outfile", f"{name}-cert.pem", cwd=d)

    def leaf(sub, ca_name, role, trusted, extra=""):
        out = d / sub
        out.mkdir()
        (d / "leaf.info").write_text(f"cn = kiln {role}\n{extra}tls_www_{role}\nsigning_key\n"
                                     "encryption_key\nexpiration_days = 30\n")
        certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", out / f"{role}-key.pem",
                 cwd=d)
        certtool("--generate-certificate", "--load-ca-certificate", f"{ca_name}-cert.pem",
                 "--load-ca-privkey", f"{ca_name}-key.pem", "--load-privkey",
                 out / f"{role}-key.pem", "--template", "leaf.info", "--outfile",
                 out / f"{role}-cert.pem", cwd=d)
        (out / "ca-cert.pem").write_bytes((d / f"{trusted}-cert.pem").read_bytes())
        return out

    ca("ca")
    ca("other")
    return {"dst": leaf("dst", "ca", "server", "ca", "dns_name = localhost\nip_address = 127.0.0.1\n"),
            "src": leaf("src", "ca", "client", "ca"),
            "rogue": leaf("rogue", "other", "client", "ca"),
            "blind": leaf("blind", "ca", "client", "other")}


# `kiln restore --incoming fd:N`: this program listens, accepts the source's connection and
# execs kiln with it as descriptor N, as a jailer or supervisor would hand one over.
HAND_OVER = """
import os, socket, sys
port, argv = int(sys.argv[1]), sys.argv[2:]
with socket.create_server(("127.0.0.1", port)) as s:
    print("listening", file=sys.stderr, flush=True)
    conn, _ = s.accept()
os.set_inheritable(conn.fileno(), True)
os.execv(argv[0], [a.replace("@FD@", str(conn.fileno())) for a in argv])
"""


def migrate_and_check(kiln, src, sock, disk, tmp_path, dst_argv, body, hand_over=False):
    """Move @src's guest to `kiln restore` with @dst_argv (+ --config-file naming another path
    of the same disk; the source's path is gone before the migration, so only the
    destination's own can open it), by PUT /migrate with @body; check the guest carries on
    there with its memory and its disk, opened through the destination's path."""
    src.check("mkdir -p /mnt && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/f bs=1k count=2048 2>/dev/null && sync")
    disk_sum = sha(src, "/mnt/f")
    src.check("dd if=/dev/urandom of=/tmp/data bs=1k count=4096 2>/dev/null")
    data_sum = sha(src, "/tmp/data")
    dst_disk = tmp_path / "dst-disk.ext4"
    os.link(disk, dst_disk)
    os.unlink(disk)
    conf = dest_config(tmp_path / "dst.json", dst_disk, 128)
    port = free_port()
    argv = [kiln, "restore", *dst_argv, "--config-file", conf, "--level", "Info"]
    if hand_over:
        dst = Shell([sys.executable, "-c", HAND_OVER, port, *argv[:2], "--incoming", "fd:@FD@",
                     *argv[2:]], ready=False)
        wait_listening(dst, "listening")
    else:
        dst = Shell([*argv[:2], "--incoming", f"tcp:127.0.0.1:{port}", *argv[2:]], ready=False)
    try:
        if not hand_over:
            wait_listening(dst)
        status, reply = call(sock, "PUT", "/migrate", {"destination_url": f"tcp:127.0.0.1:{port}", **body})
        assert status == 204, reply
        assert src.proc.wait(timeout=900) == 0, src.err()
        assert "migration completed" in src.err(), src.err()
        assert_counting(dst)
        assert sha(dst, "/tmp/data") == data_sum
        assert sha(dst, "/mnt/f") == disk_sum
        dst.check("echo moved > /mnt/moved && sync")
        fds = open_files(dst.proc.pid)
        assert str(dst_disk) in fds and not any("src-disk" in f for f in fds), fds
        assert "snapshot" in dst.err() and "loaded" in dst.err()
        assert "the microVM is made while the source pre-copies" in dst.err(), dst.err()
    finally:
        dst.close()


def test_live_migration_while_the_guest_writes_memory(kvm, kiln, bzimage, initrd, tmp_path):
    """PUT /migrate to `kiln restore --incoming` over plain TCP (insecure_plain_tcp, asked for
    by name on both sides): pre-copy rounds while the guest rewrites 16 MiB over and over, then
    stop and copy; the source ends (exit 0, downtime logged) and the destination runs the same
    guest with the same disk."""
    disk = tmp_path / "disk.ext4"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(disk), "32M"], check=True)
    sock = tmp_path / "api.sock"
    src = boot_api(kiln, sock, bzimage, initrd, mem=256, puts=[
        ("/drives/data", {"drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
                          "is_read_only": False})])
    port = free_port()
    dst = Shell([kiln, "restore", "--incoming", f"tcp:127.0.0.1:{port}", "--insecure-plain-tcp",
                 "--config-file", dest_config(tmp_path / "dst.json", disk, 256), "--level", "Info"],
                ready=False)
    plain = {"insecure_plain_tcp": True}
    try:
        src.check(COUNTER)
        src.check("mkdir -p /mnt && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/f bs=1k count=2048 2>/dev/null && sync")
        disk_sum = sha(src, "/mnt/f")
        src.check("dd if=/dev/urandom of=/tmp/data bs=1k count=4096 2>/dev/null")
        data_sum = sha(src, "/tmp/data")
        src.check("(while true; do dd if=/dev/urandom of=/tmp/busy bs=1M count=16 2>/dev/null; done) & true")
        def failed_with(why):
            deadline = time.monotonic() + 120
            while (state := call(sock, "GET", "/migrate")[1])["state"] == "active":
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            assert state["state"] == "failed" and why in state["error"], state

        # PUT /migrate answers before the destination does; a refused connection fails the
        # migration, the guest runs on.
        url = {"destination_url": f"tcp:127.0.0.1:{free_port()}", **plain}
        assert call(sock, "PUT", "/migrate", url) == (204, None)
        failed_with("connect: Connection refused")
        status, body = call(sock, "PUT", "/migrate", {"destination_url": "udp:nowhere", **plain})
        assert status == 400 and "tcp:HOST:PORT" in body["fault_message"], body
        # A destination that does not answer (a listener whose one-slot queue is full: its
        # SYNs are dropped): the API serves on while the migration thread waits, a second PUT
        # is refused; once the port closes, the migration fails.
        with socket.socket() as hole, socket.socket() as filler:
            hole.bind(("127.0.0.1", 0))
            hole.listen(0)
            filler.connect(hole.getsockname())
            url = {"destination_url": f"tcp:127.0.0.1:{hole.getsockname()[1]}", **plain}
            assert call(sock, "PUT", "/migrate", url) == (204, None)
            assert call(sock, "GET", "/migrate")[1]["state"] == "active"
            assert call(sock, "GET", "/machine-config")[0] == 200
            status, body = call(sock, "PUT", "/migrate", url)
            assert status == 400 and "in progress" in body["fault_message"], body
        failed_with("connect: ")
        assert_counting(src)
        wait_listening(dst)
        assert call(sock, "PUT", "/migrate", {"destination_url": f"tcp:127.0.0.1:{port}", **plain}) == (204, None)
        assert src.proc.wait(timeout=900) == 0, src.err()
        done = re.search(r"migration completed: (\d+) us in all, downtime (\d+) us, (\d+) rounds",
                         src.err())
        assert done and int(done.group(3)) >= 2, src.err()
        assert_counting(dst)
        assert sha(dst, "/tmp/data") == data_sum
        assert sha(dst, "/mnt/f") == disk_sum
        dst.check("echo moved > /mnt/moved && sync")
        assert "snapshot" in dst.err() and "loaded" in dst.err()
    finally:
        src.close()
        dst.close()


def test_live_migration_over_tls_psk(kvm, kiln, bzimage, initrd, tmp_path):
    """TLS with a pre-shared key (psktool's file; the destination's holds other identities
    too), the destination's connection handed over as --incoming fd:N: the guest, its memory
    and its disk arrive; the destination opened its own path of the disk."""
    src, sock, disk = boot_with_disk(kiln, bzimage, initrd, tmp_path, 128)
    try:
        src_keys = psk_file(tmp_path / "src.psk")
        dst_keys = psk_file(tmp_path / "dst.psk", "another")
        with open(dst_keys, "a") as f:
            f.write(src_keys.read_text())
        migrate_and_check(kiln, src, sock, disk, tmp_path, ["--tls-psk", dst_keys],
                          {"tls_psk_file": str(src_keys)}, hand_over=True)
    finally:
        src.close()


def test_live_migration_over_tls_x509(kvm, kiln, bzimage, initrd, tmp_path, pki):
    """TLS with X.509 certificates of one CA both ways, the destination's checked against the
    address the source connects to."""
    src, sock, disk = boot_with_disk(kiln, bzimage, initrd, tmp_path, 128)
    try:
        migrate_and_check(kiln, src, sock, disk, tmp_path, ["--tls-x509", pki["dst"]],
                          {"tls_x509_dir": str(pki["src"])})
    finally:
        src.close()


def test_refused_migrations_leave_the_guest_running(kvm, kiln, bzimage, initrd, tmp_path, pki):
    """Each way a migration is refused, in turn against one source guest: the destination
    exits non-zero naming the fault, the source's GET /migrate says failed and why, and its
    guest carries on. Then the flags and bodies that are refused before anything starts."""
    src, sock, disk = boot_with_disk(kiln, bzimage, initrd, tmp_path, 128)
    keys, other_keys = psk_file(tmp_path / "k.psk"), psk_file(tmp_path / "other.psk")
    conf = dest_config(tmp_path / "same.json", disk, 128)
    cases = [
        # (destination flags, PUT body, destination's exit, its message, the source's)
        (["--tls-psk", keys], {"tls_psk_file": str(other_keys)}, 1,
         "TLS handshake with the source: ", "TLS handshake with the destination: it refused "
         "the handshake (TLS alert: "),
        (["--tls-psk", psk_file(tmp_path / "stranger.psk", "stranger")],
         {"tls_psk_file": str(keys)}, 1, 'identity "kiln" is not in',
         "TLS handshake with the destination: it refused the handshake"),
        (["--tls-x509", pki["dst"]], {"tls_x509_dir": str(pki["rogue"])}, 1,
         "TLS handshake with the source: it sent no certificate (it has none of a CA in "
         "ca-cert.pem)", "TLS handshake with the destination: it refused the handshake (TLS "
         "alert: "),
        (["--tls-x509", pki["dst"]], {"tls_x509_dir": str(pki["blind"])}, 1,
         "TLS handshake with the source: it refused the handshake",
         "TLS handshake with the destination: its certificate: The certificate is NOT "
         "trusted. The certificate issuer is unknown."),
        (["--insecure-plain-tcp", "--config-file",
          dest_config(tmp_path / "ro.json", disk, 128, read_only=True)],
         {"insecure_plain_tcp": True}, 2,
         'drives "data": is_read_only is false in the stream, true in --config-file',
         "the destination did not take the VM (its restore failed)"),
        (["--insecure-plain-tcp", "--config-file",
          dest_config(tmp_path / "nodrive.json", disk, 128, drive=False)],
         {"insecure_plain_tcp": True}, 2, 'drives "data": in the stream, not in --config-file',
         "the destination did not take the VM (its restore failed)"),
        (["--tls-psk", keys], {"tls_psk_file": str(keys)}, 2,
         'drives "data": the stream names a host resource (path_on_host); the destination '
         "takes those only from its own --config-file",
         "the destination did not take the VM (its restore failed)"),
        (["--tls-psk", keys, "--config-file", dest_config(tmp_path / "mem.json", disk, 256)],
         {"tls_psk_file": str(keys)}, 2,
         "machine-config: mem_size_mib is 128 in the stream, 256 in --config-file",
         "the destination did not take the VM (its restore failed)"),
    ]
    try:
        for flags, body, code, dst_says, src_says in cases:
            port = free_port()
            dst = Shell([kiln, "restore", "--incoming", f"tcp:127.0.0.1:{port}", *flags,
                         "--level", "Info"], ready=False)
            try:
                wait_listening(dst)
                status, reply = call(sock, "PUT", "/migrate",
                                     {"destination_url": f"tcp:127.0.0.1:{port}", **body})
                assert status == 204, reply
                assert dst.proc.wait(timeout=600) == code, (flags, dst.err())
                assert dst_says in dst.err(), (flags, dst.err())
                deadline = time.monotonic() + 300
                while (state := call(sock, "GET", "/migrate")[1])["state"] == "active":
                    assert time.monotonic() < deadline, state
                    time.sleep(0.2)
                assert state["state"] == "failed" and src_says in state["error"], (flags, state)
                assert_counting(src)
            finally:
                dst.close()
        # The source's body: exactly one way to secure the channel, its files readable.
        url = {"destination_url": "tcp:127.0.0.1:1"}
        for body, message in [
                ({}, 'needs one of "tls_psk_file", "tls_x509_dir" or "insecure_plain_tcp": true'),
                ({"insecure_plain_tcp": False}, 'needs one of "tls_psk_file"'),
                ({"tls_psk_file": str(keys), "insecure_plain_tcp": True},
                 '"tls_psk_file" and "insecure_plain_tcp": true exclude each other'),
                ({"tls_psk_file": str(tmp_path / "none.psk")},
                 f"tls_psk_file {tmp_path}/none.psk: No such file or directory"),
                ({"tls_x509_dir": str(tmp_path)},
                 f"tls_x509_dir {tmp_path}/ca-cert.pem: No such file or directory")]:
            status, reply = call(sock, "PUT", "/migrate", {**url, **body})
            assert status == 400 and message in reply["fault_message"], (body, reply)
        assert call(sock, "GET", "/migrate")[1]["state"] == "failed"
        # The destination's flags: exactly one with --incoming, none without.
        for flags, message in [
                ([], "the migration channel needs one of --tls-psk FILE, --tls-x509 DIR or "
                     "--insecure-plain-tcp"),
                (["--tls-psk", keys, "--tls-x509", pki["dst"]],
                 "--tls-psk FILE and --tls-x509 DIR exclude each other"),
                (["--tls-x509", tmp_path], f"--tls-x509 {tmp_path}/ca-cert.pem: No such file"),
                (["--tls-psk", conf], f"--tls-psk {conf}: line 1: the key is not hexadecimal")]:
            proc = subprocess.run([kiln, "restore", "--incoming", "tcp:127.0.0.1:1", *flags],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 2 and message in proc.stderr, (flags, proc.stderr)
        proc = subprocess.run([kiln, "restore", "--snapshot", "s", "--mem-file", "m",
                               "--insecure-plain-tcp"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "go with --incoming" in proc.stderr, proc.stderr
        assert_counting(src)
    finally:
        src.close()
