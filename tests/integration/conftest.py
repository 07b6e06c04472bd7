# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for kiln's integration tests: the kiln binary, the real Debian kernel and the
test initramfs, and a helper that runs `kiln run` and collects what the guest reported.

These tests need a usable /dev/kvm. scripts/test runs them on the host when it has hardware KVM
and inside scripts/kvm-box otherwise; without /dev/kvm every test here fails (never skips)."""
import os
import re
import pathlib
import subprocess
import time

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ovmf_boot: runs OVMF's code, which the KVM box's emulator cannot (test_uefi.py); "
        "scripts/test leaves these out in the box unless KILN_TEST_OVMF_BOOT=1")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KILN_BUILD", ROOT / "build"))
CACHE = ROOT / ".cache"


def _require(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test (it builds kiln and fetches the kernel)")
    return path


@pytest.fixture(scope="session")
def kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is not usable here; run the integration tests through scripts/test, "
                    "which uses scripts/kvm-box on hosts without hardware KVM")


@pytest.fixture(scope="session")
def kiln():
    return _require(BUILD / "kiln")


@pytest.fixture(scope="session")
def bzimage():
    return _require(CACHE / "kernel/cloud/vmlinuz")


@pytest.fixture(scope="session")
def vmlinux():
    return _require(CACHE / "kernel/cloud/vmlinux")


@pytest.fixture(scope="session")
def initrd():
    return _require(CACHE / "initramfs/test.cpio.gz")


@pytest.fixture(scope="session")
def debian():
    """The Debian 12 system scripts/mkrootfs built: rootfs.img, vmlinuz, initrd.img."""
    d = CACHE / "rootfs"
    for name in ("rootfs.img", "vmlinuz", "initrd.img"):
        _require(d / name)
    return d


class Guest:
    """A finished `kiln run`: exit status, console output, stderr, and KILN-FACT values."""

    def __init__(self, returncode, out, err):
        self.returncode = returncode
        self.out = out
        self.err = err
        self.facts = {}
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("[") and "] KILN-FACT " in line:  # through the kernel's log
                line = line.split("] ", 1)[1]
            if line.startswith("KILN-FACT "):
                key, _, value = line[len("KILN-FACT "):].partition("=")
                self.facts[key] = value

    def __repr__(self):
        return (f"Guest(rc={self.returncode}, facts={self.facts},\n--- console tail ---\n"
                f"{self.out[-3000:]}\n--- stderr ---\n{self.err[-2000:]})")


def threads_of(pid):
    """Each thread of @pid: its name, state, wait channel and kernel stack, and, where gdb is
    installed, every thread's backtrace: what a hung kiln was doing."""
    out = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        t = f"/proc/{pid}/task/{tid}"
        try:
            comm = open(f"{t}/comm").read().strip()
            state = open(f"{t}/stat").read().rsplit(")", 1)[1].split()[0]
            wchan = open(f"{t}/wchan").read().strip()
            stack = open(f"{t}/stack").read().strip().replace("\n", " | ")
        except OSError as e:
            out.append(f"{tid}: {e}")
            continue
        out.append(f"{tid} {comm} {state} wchan={wchan} stack: {stack[:300]}")
    try:
        gdb = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                             capture_output=True, text=True, timeout=120)
        out.append(gdb.stdout[-6000:])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "\n".join(out)


def sample_disks(tmp_path, ext4_name):
    """The disks the blk and qcow2 tests share: a 64 MiB ext4 image @ext4_name holding
    hello.txt, and a 1 MiB raw image of a recognisable pattern (bytes 0..255 over and over)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the host\n")
    ext4 = tmp_path / ext4_name
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(root), str(ext4), "64M"], check=True)
    pattern = tmp_path / "pattern.raw"
    pattern.write_bytes(bytes(range(256)) * 4096)
    return ext4, pattern


def run_kiln(kiln, *args, timeout=240, stdin=subprocess.DEVNULL, prefix=()):
    """Run kiln to completion (under @prefix, e.g. `ip netns exec NS`) and return a Guest. A
    kiln still running after @timeout seconds fails the test with the console's and stderr's
    tails and its threads' states."""
    proc = subprocess.Popen([*prefix, str(kiln), *map(str, args)], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        threads = threads_of(proc.pid)
        proc.kill()
        out, err = proc.communicate()
        stuck = Guest(None, out.decode(errors="replace"), err.decode(errors="replace"))
        raise AssertionError(f"kiln still running after {timeout} s (killed): {stuck}\n"
                             f"--- its threads ---\n{threads}") from None
    return Guest(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def boot(kiln, kernel, initrd, test, *extra, cmdline="", timeout=240):
    """Boot @kernel with the test initramfs running guest test @test (tests/guests/init.sh)."""
    line = f"console=ttyS0 kiln.test={test} {cmdline}".strip()
    return run_kiln(kiln, "run", "--kernel", kernel, "--initrd", initrd, "--cmdline", line, *extra,
                    timeout=timeout)


def wait_for(proc, marker, timeout=240):
    """Read proc.stdout until @marker appears; return everything read."""
    seen = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while marker.encode() not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{marker!r} not seen; console so far:\n{seen.decode(errors='replace')[-3000:]}")
        chunk = proc.stdout.read()
        if chunk:
            seen += chunk
        else:
            time.sleep(0.05)
    return seen.decode(errors="replace")


def overlay(base, path):
    """A qcow2 overlay at @path over the raw image @base (the cached image stays as built)."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(path)], check=True)
    return path


def login_run_poweroff(argv, line, marker, timeout=1800):
    """Run kiln (@argv) booting scripts/mkdiskimg's Debian to its serial login prompt, log in
    as root, type @line (which must end in a poweroff) and wait for @marker from it; kiln must
    then exit 0. Returns the whole console output."""
    proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(text):
        proc.stdin.write(text.encode())
        proc.stdin.flush()

    try:
        out = wait_for(proc, "kiln-guest login:", timeout=timeout)
        send("root\n")
        out += wait_for(proc, "Password:", timeout=120)
        time.sleep(0.5)
        send("kiln\n")
        out += wait_for(proc, "root@kiln-guest", timeout=120)
        send(line + "\n")
        out += wait_for(proc, marker, timeout=120)
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode(errors="replace")
        return out + proc.stdout.read().decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()


class Shell:
    """A `kiln run` whose serial console is the test initramfs's interactive shell: a test
    types commands and reads their output and exit status, as a user at the console would.
    @argv is the whole command (it may start with e.g. `ip netns exec NS`)."""

    def __init__(self, argv, timeout=240, ready=True):
        import tempfile
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = b""
        self.n = 0
        if ready:
            self.wait_ready(timeout)

    def wait_ready(self, timeout=240):
        """Wait for the guest's shell prompt (for a VM that boots later, e.g. on InstanceStart)."""
        self._wait_for(b"KILN-INIT-READY", timeout)
        self._wait_for(b"kiln# ", timeout)

    def _read_until(self, done, timeout, what):
        """Read console output until done() is true; fail naming @what after @timeout s."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{what} not seen within {timeout} s; console tail:\n"
                                     f"{self.out[-3000:].decode(errors='replace')}\n"
                                     f"--- stderr ---\n{self.err()[-2000:]}")
            chunk = self.proc.stdout.read()
            if chunk:
                self.out += chunk
            else:
                time.sleep(0.02)

    def _wait_for(self, marker, timeout, start=0):
        self._read_until(lambda: self.out.find(marker, start) >= 0, timeout, repr(marker))
        return self.out.find(marker, start)

    def err(self):
        """kiln's stderr so far (all of it once closed)."""
        if self.stderr.closed:
            return self._err
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def run(self, cmd, timeout=120):
        """Run @cmd in the guest's shell; returns (exit status, output)."""
        self.n += 1
        start = len(self.out)
        # The echoed command line shows "$?", the answer a number: only the answer matches.
        self.proc.stdin.write(f"{cmd}; echo KILN-RC-{self.n}=$?\n".encode())
        self.proc.stdin.flush()
        marker = f"KILN-RC-{self.n}=".encode()
        at = start
        while True:
            at = self._wait_for(marker, timeout, at)
            # The byte after the marker may not have arrived yet: wait for it before deciding.
            self._read_until(lambda: len(self.out) > at + len(marker), timeout, "the exit status")
            if self.out[at + len(marker):at + len(marker) + 1].isdigit():
                break
            at += 1
        self._wait_for(b"\n", timeout, at)
        # The digits alone: a kernel message can follow them on the same line.
        rc = int(re.match(rb"\d+", self.out[at + len(marker):]).group())
        text = self.out[start:at].decode(errors="replace")
        # Drop the echoed command line, and whatever the console printed before it (a kernel
        # message can land between the prompt and the echo).
        echo = text.find(f"KILN-RC-{self.n}=$?")
        if echo >= 0 and "\n" in text[echo:]:
            text = text[text.index("\n", echo) + 1:]
        else:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        return rc, text

    def check(self, cmd, timeout=120):
        rc, text = self.run(cmd, timeout)
        assert rc == 0, f"guest: `{cmd}` exited {rc}:\n{text[-2000:]}\n--- stderr ---\n{self.err()[-2000:]}"
        return text

    def poweroff(self, timeout=120):
        """Power the guest off; returns kiln's exit status."""
        self.proc.stdin.write(b"poweroff\n")
        self.proc.stdin.flush()
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._err = self.err()
        self.stderr.close()


@pytest.fixture
def netns():
    """A network namespace with a tap ktap0 at 10.9.0.1/24, removed afterwards."""
    ns = f"kiln-test-{os.getpid()}"
    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "tuntap", "add", "dev", "ktap0", "mode", "tap")
        ip("-n", ns, "addr", "add", "10.9.0.1/24", "dev", "ktap0")
        ip("-n", ns, "link", "set", "ktap0", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns, *argv):
    return ["ip", "netns", "exec", ns, *map(str, argv)]
