# SPDX-License-Identifier: Apache-2.0
"""Seccomp: every thread of a running kiln is filtered (/proc/PID/task/TID/status shows
Seccomp: 2), in `kiln run` and in Firecracker mode, while a guest uses disks (both engines), a
NIC, vsock and rng; --no-seccomp leaves them unfiltered; and for each thread category a call its
filter forbids ends kiln with 148 and one line naming the thread and the call (a filter file
that is kiln's own minus that one call). The rest of the suite runs with kiln's own filters on,
so any call a feature needs and the filters lack fails its test."""
import json
import pathlib
import subprocess

import pytest

from conftest import ROOT, Shell, boot
from fcapi import call, wait_for_socket

FILTERS = ROOT / "src/seccomp/x86_64.json"
# x86_64 system call numbers of the calls the tests take away.
NR = {"ioctl": 16, "epoll_wait": 232, "preadv": 295}


def filters_without(tmp_path, category, syscall, comment=None):
    """kiln's own filters with @category's rules for @syscall removed (only the one whose
    condition is commented @comment, when given)."""
    doc = json.loads(FILTERS.read_text())
    rules = doc[category]["filter"]
    keep = [r for r in rules if r["syscall"] != syscall or
            (comment and not any(a.get("comment") == comment for a in r.get("args", [])))]
    assert len(keep) < len(rules), (category, syscall, comment)
    doc[category]["filter"] = keep
    path = tmp_path / f"without-{category}-{syscall}.json"
    path.write_text(json.dumps(doc))
    return path


def threads(pid):
    """(name, Seccomp mode) of every thread of process @pid."""
    out = []
    for task in sorted(pathlib.Path(f"/proc/{pid}/task").iterdir()):
        status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines()
                      if ":\t" in line)
        out.append((status["Name"].strip(), status["Seccomp"].strip()))
    return out


def devices(tmp_path):
    sync_disk, uring_disk = tmp_path / "sync.img", tmp_path / "uring.img"
    for d in (sync_disk, uring_disk):
        d.write_bytes(b"\0" * (4 << 20))
    return ["--disk", f"{sync_disk},engine=sync", "--disk", f"{uring_disk},engine=io_uring",
            "--net", "user", "--vsock", f"cid=3,uds={tmp_path / 'v.sock'}", "--rng"]


def exercise(sh):
    """Make every kind of thread work: both disks read and written, entropy drawn, a packet."""
    for dev in ("vda", "vdb"):
        sh.check(f"dd if=/dev/urandom of=/dev/{dev} bs=64k count=4 conv=fsync 2>/dev/null")
        sh.check(f"dd if=/dev/{dev} of=/dev/null bs=64k count=4 iflag=direct 2>/dev/null")
    sh.check("head -c 512 /dev/hwrng > /dev/null")
    sh.check("ip link set eth0 up && udhcpc -i eth0 -s /etc/udhcpc.sh -q -n >/dev/null 2>&1")


def test_every_thread_is_filtered(kvm, kiln, bzimage, initrd, tmp_path):
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--cmdline", "console=ttyS0",
                "--cpus", "2", *devices(tmp_path)])
    try:
        exercise(sh)
        seen = threads(sh.proc.pid)
        names = [name for name, _ in seen]
        assert {"vcpu0", "vcpu1", "disk-io"} <= set(names), seen
        assert all(mode == "2" for _, mode in seen), seen
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


def test_every_thread_is_filtered_in_firecracker_mode(kvm, kiln, bzimage, initrd, tmp_path):
    """Firecracker's API: the main thread is filtered before it serves the first request,
    and the threads InstanceStart makes are too."""
    sock = tmp_path / "api.sock"
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (4 << 20))
    sh = Shell([kiln, "--api-sock", sock], ready=False)
    try:
        wait_for_socket(sock, sh.proc)
        assert all(mode == "2" for _, mode in threads(sh.proc.pid))
        assert call(sock, "PUT", "/boot-source", {"kernel_image_path": str(bzimage),
                                                   "initrd_path": str(initrd),
                                                   "boot_args": "console=ttyS0"})[0] == 204
        assert call(sock, "PUT", "/drives/d", {"drive_id": "d", "path_on_host": str(img),
                                               "is_root_device": False, "is_read_only": False,
                                               "io_engine": "Sync"})[0] == 204
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        sh.wait_ready()
        sh.check("dd if=/dev/vda of=/dev/null bs=64k count=4 iflag=direct 2>/dev/null")
        seen = threads(sh.proc.pid)
        assert {"vcpu0", "disk-io"} <= {name for name, _ in seen}, seen
        assert all(mode == "2" for _, mode in seen), seen
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


def test_no_seccomp(kvm, kiln, bzimage, initrd, tmp_path):
    sh = Shell([kiln, "run", "--no-seccomp", "--kernel", bzimage, "--initrd", initrd,
                "--cmdline", "console=ttyS0"])
    try:
        assert all(mode == "0" for _, mode in threads(sh.proc.pid)), threads(sh.proc.pid)
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


@pytest.mark.parametrize("category,syscall,comment", [
    ("vmm", "epoll_wait", None),      # the event loop's first wait
    ("vcpu", "ioctl", "KVM_RUN"),     # a vCPU's first entry into the guest
    ("worker", "preadv", None),       # the synchronous disk engine's first read (the partition table)
])
def test_forbidden_call_ends_kiln(kvm, kiln, bzimage, initrd, tmp_path, category, syscall,
                                  comment):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (1 << 20))
    g = boot(kiln, bzimage, initrd, "poweroff", "--disk", f"{img},engine=sync",
             "--seccomp-filter", filters_without(tmp_path, category, syscall, comment))
    assert g.returncode == 148, g
    lines = [line for line in g.err.splitlines() if "seccomp" in line]
    assert len(lines) == 1, g
    assert f"kiln: seccomp: the {category} thread (tid " in lines[0], g
    assert f"made system call {NR[syscall]}, which its filter forbids" in lines[0], g
