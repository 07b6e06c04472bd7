# SPDX-License-Identifier: Apache-2.0
"""kiln-jailer, Firecracker v1.16.1's jailer for kiln: a VM started through it as an
unprivileged uid/gid, daemonized, in a new PID namespace, in a network namespace holding its tap
and in a cgroup v2 with memory.max and cpu.max, checked from the host (uid/gid, root, cgroup,
namespaces, limits, descriptors) and driven through the API socket inside the chroot with
Firecracker's getting-started requests; the guest boots, pings through the tap and echoes over
vsock through the chroot's socket. Then the jail's layout, and each bad argument: Firecracker's
exit code (1) and message, one line on stderr."""
import ctypes
import gzip
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import BUILD
from fcapi import call, open_files, vsock_connect, wait_for_socket

UID = GID = 12345
PR_SET_CHILD_SUBREAPER = 36
CGROUP2 = pathlib.Path("/sys/fs/cgroup")
# Run by the guest's login shell on its (unread) serial console, from a second initramfs
# archive appended to the test one: eth0 on the tap, a vsock echo server on port 5000, and a
# report to the host's port 6000 (<uds>_6000 in the jail).
PROFILE = """\
ip addr add 10.9.1.2/24 dev eth0
ip link set eth0 up
vsockcat echo 5000 </dev/null >/dev/null 2>&1 &
{ echo "serial=$(cat /sys/block/vda/serial)"; ping -c 3 -W 5 10.9.1.1 >/dev/null 2>&1 && echo ping=ok; } |
	vsockcat connect 2 6000
"""


@pytest.fixture(scope="session")
def jailer():
    path = BUILD / "kiln-jailer"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/build")
    return path


def jail_cmd(jailer, kiln, jail_id, base, *extra):
    return [str(jailer), "--id", jail_id, "--exec-file", str(kiln), "--uid", str(UID),
            "--gid", str(GID), "--chroot-base-dir", str(base), *map(str, extra)]


def give(path):
    os.chown(path, UID, GID)
    return path


def initrd_with_profile(initrd, tmp_path):
    """The test initramfs plus a gzip'd cpio archive holding /.profile (the kernel unpacks
    concatenated archives in order)."""
    d = tmp_path / "profile"
    d.mkdir()
    (d / ".profile").write_text(PROFILE)
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], input=b".profile\n",
                             cwd=d, capture_output=True, check=True).stdout
    return initrd.read_bytes() + gzip.compress(archive)


def status_fields(pid):
    return dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines())


def wait_pid_file(path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().isdigit():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout} s")


class Running:
    """wait_for_socket's view of our (subreaped) child @pid: running until it is a zombie."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        state = pathlib.Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return 1 if state == "Z" else None


def rmdir_retrying(path, timeout=10):
    """rmdir a cgroup its processes are leaving."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            path.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_exit(pid, timeout):
    """Wait for our (subreaped) child @pid; returns its exit code (negative: signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still running after {timeout} s")


def test_vm_through_the_jailer(kvm, kiln, jailer, bzimage, initrd, netns, tmp_path):
    libc = ctypes.CDLL(None, use_errno=True)
    for args in (["tuntap", "add", "dev", "jtap0", "mode", "tap", "user", str(UID), "group", str(GID)],
                 ["addr", "add", "10.9.1.1/24", "dev", "jtap0"], ["link", "set", "jtap0", "up"]):
        subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True)
    jail_id = f"jailed-{os.getpid()}"
    base = tmp_path / "j"
    root = base / "kiln" / jail_id / "root"
    root.mkdir(parents=True)
    # What the VM uses goes into the jail first, owned by the jail's user (Firecracker's docs).
    give(shutil.copy(bzimage, root / "vmlinuz"))
    (root / "initrd.img").write_bytes(initrd_with_profile(initrd, tmp_path))
    give(root / "initrd.img")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(root / "rootfs.ext4"), "32M"], check=True,
                   capture_output=True)
    give(root / "rootfs.ext4")
    log = root / "kiln.log"
    log.write_text("")
    give(log)
    report = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    report.bind(str(root / "v.sock_6000"))
    report.listen(1)
    give(root / "v.sock_6000")
    stray = open(tmp_path / "stray", "w")  # an inherited descriptor the jailer must close
    cgroup = CGROUP2 / "kiln" / jail_id
    pid = None

    def kiln_log():
        return log.read_text()[-3000:] if log.exists() else "(no log)"

    try:
        # The daemon's parents exit: kiln is reparented to this process, which can wait for it.
        assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        proc = subprocess.run(
            jail_cmd(jailer, kiln, jail_id, base, "--netns", f"/run/netns/{netns}", "--daemonize",
                     "--new-pid-ns", "--cgroup-version", "2", "--cgroup", "memory.max=1073741824",
                     "--cgroup", "cpu.max=100000 100000", "--resource-limit", "no-file=1024",
                     "--resource-limit", "fsize=1073741824",
                     "--", "--log-path", "/kiln.log", "--level", "Info"),
            capture_output=True, text=True, timeout=120, pass_fds=[stray.fileno()])
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
        pid = wait_pid_file(root / "kiln.pid")
        sock = root / "run/firecracker.socket"
        wait_for_socket(sock, Running(pid), timeout=60)

        # The process, from the host.
        st = status_fields(pid)
        assert st["Uid"].split() == [str(UID)] * 4 and st["Gid"].split() == [str(GID)] * 4, st
        assert st["Groups"].split() == [], st
        assert st["NSpid"].split() == [str(pid), "1"], st  # init of its own PID namespace
        assert st["Seccomp"].split() == ["2"], st  # kiln's own filters, as outside a jail
        assert os.stat(f"/proc/{pid}/root").st_ino == os.stat(root).st_ino
        assert os.path.exists(f"/proc/{pid}/root/kiln") and not os.path.exists(f"/proc/{pid}/root/tmp")
        assert pathlib.Path(f"/proc/{pid}/cgroup").read_text() == f"0::/kiln/{jail_id}\n"
        assert (cgroup / "memory.max").read_text() == "1073741824\n"
        assert (cgroup / "cpu.max").read_text() == "100000 100000\n"
        enabled = (CGROUP2 / "kiln/cgroup.subtree_control").read_text().split()
        assert "memory" in enabled and "cpu" in enabled, enabled
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns}").st_ino
        for ns in ("net", "mnt", "pid"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        limits = pathlib.Path(f"/proc/{pid}/limits").read_text()
        assert "Max open files            1024                 1024" in limits, limits
        assert "Max file size             1073741824           1073741824" in limits, limits
        assert os.getsid(pid) != os.getsid(0)
        fds = open_files(pid)
        assert str(tmp_path / "stray") not in fds and os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        assert pathlib.Path(f"/proc/{pid}/environ").read_bytes() == b""
        argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert argv[:3] == ["/kiln", "--id", jail_id], argv
        assert argv[3::2][:3] == ["--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us"], argv
        assert all(v.isdigit() for v in argv[4:9:2]), argv
        assert argv[9:] == ["--log-path", "/kiln.log", "--level", "Info"], argv

        # Firecracker's getting-started sequence on the socket inside the chroot.
        for method, path, body in [
                ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
                ("PUT", "/boot-source", {"kernel_image_path": "/vmlinuz", "initrd_path": "/initrd.img",
                                         "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"}),
                ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/rootfs.ext4",
                                           "is_root_device": True, "is_read_only": False}),
                ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "guest_mac": "06:00:AC:10:00:02",
                                                     "host_dev_name": "jtap0"}),
                ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/v.sock"}),
                ("PUT", "/actions", {"action_type": "InstanceStart"})]:
            assert call(sock, method, path, body) == (204, None), (path, kiln_log())

        # The guest's report: its disk, a ping through the tap, over a guest-initiated stream.
        report.settimeout(300)
        conn, _ = report.accept()
        conn.settimeout(120)
        text = b""
        while chunk := conn.recv(4096):
            text += chunk
        conn.close()
        facts = dict(line.split("=", 1) for line in text.decode().split())
        assert facts == {"serial": "rootfs", "ping": "ok"}, (facts, kiln_log())

        # A host-initiated vsock stream through the jail's socket, echoed by the guest.
        s = vsock_connect(root / "v.sock", 5000)
        data = os.urandom(100000)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        s.close()
        assert got == data

        status, info = call(sock, "GET", "/")
        assert status == 200 and info["id"] == jail_id and info["state"] == "Running", info
        # SIGTERM from the host reaches kiln (init of its PID namespace), which stops the VM.
        os.kill(pid, signal.SIGTERM)
        assert wait_exit(pid, 120) == 143, kiln_log()
        pid = None
        assert not sock.exists()
    finally:
        stray.close()
        report.close()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 60)
        while True:  # the daemon's parents, reparented here
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        rmdir_retrying(cgroup)
        rmdir_retrying(cgroup.parent)


def test_jail_layout_then_existing_jail(kiln, jailer, tmp_path):
    """Without --daemonize the jailer itself becomes kiln (its pid in kiln.pid) inside the jail;
    the same id again finds the jail's device nodes: Firecracker's "File exists" error."""
    root = tmp_path / "kiln" / "vm-1" / "root"
    proc = subprocess.run(jail_cmd(jailer, kiln, "vm-1", tmp_path, "--", "--version"),
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.startswith("kiln "), proc.stderr) == (0, True, ""), proc
    assert int((root / "kiln.pid").read_text()) > 0
    for path in ("", "dev", "dev/net", "run"):
        st = os.stat(root / path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, UID, GID), path
    for path, major, minor in (("dev/kvm", 10, 232), ("dev/net/tun", 10, 200), ("dev/urandom", 1, 9)):
        st = os.stat(root / path)
        assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, path
        assert (os.major(st.st_rdev), os.minor(st.st_rdev), st.st_uid, st.st_gid) == (major, minor, UID, GID)
    st, host = os.stat(root / "kiln"), os.stat(kiln)
    assert (st.st_nlink, st.st_uid, st.st_gid, st.st_mode) == (1, UID, GID, host.st_mode)
    assert st.st_ino != host.st_ino and (root / "kiln").read_bytes() == kiln.read_bytes()

    proc = subprocess.run(jail_cmd(jailer, kiln, "vm-1", tmp_path), capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "Failed to create /dev/net/tun via mknod inside the jail: File exists (os error 17)\n")


BAD = [
    # (id, flags replacing the defaults of jail_cmd (None: left out), flags added at the end,
    #  Firecracker's message); {exec} is the exec file, {tmp} a directory
    ("id-too-long", {"--id": "a" * 65}, [], "Invalid instance ID: Invalid len (65);  the length must be between 1 and 64"),
    ("id-empty", {"--id": ""}, [], "Invalid instance ID: Invalid len (0);  the length must be between 1 and 64"),
    ("id-bad-char", {"--id": "vm_1"}, [], "Invalid instance ID: Invalid char (_) at position 2"),
    ("id-no-value", {"--id": None}, ["--id"],
     "Failed to parse arguments: The argument 'id' requires a value, but none was supplied."),
    ("exec-file-missing", {"--exec-file": "/nonexistent/kiln"}, [],
     "Failed to canonicalize path /nonexistent/kiln: No such file or directory (os error 2)"),
    ("exec-file-directory", {"--exec-file": "{tmp}"}, [], "{tmp} is not a file"),
    ("no-exec-file", {"--exec-file": None}, [], "Failed to parse arguments: Argument 'exec-file' required, but not found."),
    ("no-uid", {"--uid": None}, [], "Failed to parse arguments: Argument 'uid' required, but not found."),
    ("uid-negative", {"--uid": "-1"}, [], "Invalid uid: -1"),
    ("gid-not-a-number", {"--gid": "staff"}, [], "Invalid gid: staff"),
    ("unknown-flag", {}, ["--seccomp-level", "2"],
     "Failed to parse arguments: Found argument 'seccomp-level' which wasn't expected, or isn't valid in this context."),
    ("duplicate-flag", {}, ["--daemonize", "--daemonize"],
     "Failed to parse arguments: The argument 'daemonize' was provided more than once."),
    ("chroot-base-missing", {"--chroot-base-dir": "/nonexistent/jails"}, [],
     "Failed to canonicalize path /nonexistent/jails: No such file or directory (os error 2)"),
    ("chroot-base-file", {"--chroot-base-dir": "{exec}"}, [], "{exec} is not a directory"),
    ("parent-cgroup-dotdot", {}, ["--parent-cgroup", "../escape"],
     "Parent cgroup path is invalid. Path should not be absolute or contain '..' or '.'"),
    ("cgroup-version", {}, ["--cgroup-version", "two"], "two is an invalid cgroup version specifier"),
    ("cgroup-version-unknown", {}, ["--cgroup-version", "3", "--cgroup", "memory.max=1"],
     "Hierarchy not found: No hierarchy found for this cgroup version."),
    ("cgroup-no-value", {}, ["--cgroup-version", "2", "--cgroup", "memory.max"], "Invalid format for cgroups: memory.max"),
    ("cgroup-empty-value", {}, ["--cgroup-version", "2", "--cgroup", "memory.max="],
     "Invalid format for cgroups: memory.max="),
    ("cgroup-two-equals", {}, ["--cgroup-version", "2", "--cgroup", "a=b=c"], "Invalid format for cgroups: a=b=c"),
    ("cgroup-file-no-controller", {}, ["--cgroup-version", "2", "--cgroup", "memorymax=1"],
     "Cgroup invalid file: memorymax"),
    ("cgroup-file-escapes", {}, ["--cgroup-version", "2", "--cgroup", "../memory.max=1"],
     "Cgroup invalid file: ../memory.max=1"),
    ("cgroup-controller-unavailable", {}, ["--cgroup-version", "2", "--cgroup", "nosuch.max=1"],
     "Controller nosuch is unavailable"),
    ("resource-limit-format", {}, ["--resource-limit", "no-file"], "Invalid format for resources limits: no-file"),
    ("resource-limit-name", {}, ["--resource-limit", "nproc=5"], "Invalid resource argument: nproc"),
    ("resource-limit-value", {}, ["--resource-limit", "fsize=big"],
     "Invalid limit value for resource: big: invalid digit found in string"),
    ("resource-limit-empty", {}, ["--resource-limit", "fsize="],
     "Invalid limit value for resource: : cannot parse integer from empty string"),
    ("resource-limit-too-large", {}, ["--resource-limit", "no-file=18446744073709551616"],
     "Invalid limit value for resource: 18446744073709551616: number too large to fit in target type"),
    ("netns-missing", {}, ["--netns", "/nonexistent/netns"],
     "Failed to open file /nonexistent/netns: No such file or directory (os error 2)"),
    ("netns-not-a-netns", {}, ["--netns", "{exec}"], "Failed to join network namespace: netns: Invalid argument (os error 22)"),
]


@pytest.mark.parametrize("replace,extra,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_argument(kiln, jailer, tmp_path, replace, extra, message):
    subst = {"exec": str(kiln.resolve()), "tmp": str(tmp_path)}
    (tmp_path / "jails").mkdir()
    flags = {"--id": "vm-1", "--exec-file": str(kiln), "--uid": str(UID), "--gid": str(GID),
             "--chroot-base-dir": str(tmp_path / "jails")} | replace
    argv = [str(jailer)]
    for flag, value in flags.items():
        argv += [] if value is None else [flag, value.format(**subst)]
    argv += [a.format(**subst) for a in extra]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", message.format(**subst) + "\n")
