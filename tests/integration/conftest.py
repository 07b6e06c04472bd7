"""Shared fixtures for kiln's integration tests: the kiln binary, the real Debian kernel and the
test initramfs, and a helper that runs `kiln run` and collects what the guest reported.

These tests need a usable /dev/kvm. scripts/test runs them on the host when it has hardware KVM
and inside scripts/kvm-box otherwise; without /dev/kvm every test here fails (never skips)."""
import os
import pathlib
import subprocess
import time

import pytest

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
            if line.startswith("KILN-FACT "):
                key, _, value = line[len("KILN-FACT "):].partition("=")
                self.facts[key] = value

    def __repr__(self):
        return (f"Guest(rc={self.returncode}, facts={self.facts},\n--- console tail ---\n"
                f"{self.out[-3000:]}\n--- stderr ---\n{self.err[-2000:]})")


def run_kiln(kiln, *args, timeout=240, stdin=subprocess.DEVNULL):
    """Run kiln to completion and return a Guest."""
    proc = subprocess.run([str(kiln), *map(str, args)], stdin=stdin, capture_output=True,
                          timeout=timeout)
    return Guest(proc.returncode, proc.stdout.decode(errors="replace"),
                 proc.stderr.decode(errors="replace"))


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
