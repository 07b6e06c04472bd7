# SPDX-License-Identifier: Apache-2.0
"""Bad user input: one line on stderr naming the option and the value, exit 2, no VM started."""
import os

import pytest

from conftest import run_kiln


@pytest.fixture
def files(tmp_path, bzimage):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a kernel\n")
    truncated = tmp_path / "truncated-bzImage"
    truncated.write_bytes(bzimage.read_bytes()[:1000])
    big = tmp_path / "big-initrd"
    with open(big, "wb") as f:
        f.truncate(200 << 20)  # sparse: 200 MiB that cannot fit in 128 MiB of RAM
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"x" * 1000)
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    return {"text": text, "truncated": truncated, "big": big, "dir": tmp_path, "odd": odd, "img": img}


CASES = [
    # (id, args after "run", text the message must contain)
    ("no-kernel", [], ["--kernel"]),
    ("missing-kernel", ["--kernel", "/nonexistent/vmlinuz"], ["--kernel", "/nonexistent/vmlinuz"]),
    ("directory-kernel", ["--kernel", "{dir}"], ["--kernel", "{dir}"]),
    ("text-kernel", ["--kernel", "{text}"], ["--kernel", "{text}", "not a bzImage or ELF"]),
    ("truncated-kernel", ["--kernel", "{truncated}"], ["--kernel", "{truncated}"]),
    ("missing-initrd", ["--kernel", "{bz}", "--initrd", "/nonexistent/initrd"], ["--initrd", "/nonexistent/initrd"]),
    ("initrd-too-big", ["--kernel", "{bz}", "--initrd", "{big}", "--memory", "128M"], ["--initrd", "{big}"]),
    ("memory-zero", ["--kernel", "{bz}", "--memory", "0"], ["--memory", "\"0\""]),
    ("memory-malformed", ["--kernel", "{bz}", "--memory", "12Q"], ["--memory", "12Q"]),
    ("memory-too-big", ["--kernel", "{bz}", "--memory", "100T"], ["--memory", "more than the host"]),
    ("cpus-zero", ["--kernel", "{bz}", "--cpus", "0"], ["--cpus", "\"0\""]),
    ("cpus-too-many", ["--kernel", "{bz}", "--cpus", "4096"], ["--cpus", "4096"]),
    ("cpus-malformed", ["--kernel", "{bz}", "--cpus", "two"], ["--cpus", "two"]),
    ("unknown-option", ["--kernel", "{bz}", "--frobnicate"], ["--frobnicate"]),
    ("stray-argument", ["--kernel", "{bz}", "extra"], ["extra"]),
    ("disk-missing", ["--kernel", "{bz}", "--disk", "/nonexistent/disk.img"], ["--disk", "/nonexistent/disk.img"]),
    ("disk-directory", ["--kernel", "{bz}", "--disk", "{dir}"], ["--disk", "{dir}"]),
    ("disk-odd-size", ["--kernel", "{bz}", "--disk", "{odd}"], ["--disk", "{odd}", "multiple of 512"]),
    ("disk-bad-option", ["--kernel", "{bz}", "--disk", "{img},readonly=maybe"], ["--disk", "readonly=maybe"]),
    ("disk-duplicate-id", ["--kernel", "{bz}", "--disk", "{img},id=a", "--disk", "{img},id=a"], ["--disk", "\"a\""]),
    ("disk-too-many", ["--kernel", "{bz}"] + ["--disk", "{img},readonly=on"] * 8 + ["--rng"], ["--rng", "9 devices, more than the 8 virtio slots"]),
    ("disk-bad-engine", ["--kernel", "{bz}", "--disk", "{img},engine=aio"], ["--disk", "engine=aio"]),
    ("transport-unknown", ["--kernel", "{bz}", "--transport", "usb"], ["--transport", "usb"]),
    ("cmdline-too-long", ["--kernel", "{bz}", "--cmdline", "x" * 70000], ["--cmdline"]),
]


@pytest.mark.parametrize("args,needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(kiln, bzimage, files, args, needles):
    subst = {k: str(v) for k, v in files.items()} | {"bz": str(bzimage)}
    args = [a.format(**subst) for a in args]
    g = run_kiln(kiln, "run", *args, timeout=60)
    assert g.returncode == 2, g
    lines = g.err.strip().splitlines()
    assert len(lines) == 1, g
    for n in needles:
        assert n.format(**subst) in lines[0], g
    assert g.out == "", g  # nothing started: not a byte on the console


def test_unknown_command(kiln):
    g = run_kiln(kiln, "fly", timeout=10)
    assert g.returncode == 2 and "unknown command" in g.err


def test_help_lists_exit_codes(kiln):
    g = run_kiln(kiln, "run", "--help", timeout=10)
    assert g.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "128+N"):
        assert code in g.out


def test_no_kvm_message_names_the_box(kiln, bzimage, tmp_path):
    """Without /dev/kvm kiln says so and names the box. Simulated with an empty mount namespace
    view of /dev when we are root; the check runs wherever unshare is available."""
    if os.geteuid() != 0:
        pytest.fail("integration tests run as root (scripts/test)")
    script = (f"mount -t tmpfs none /dev && exec {kiln} run --kernel {bzimage}")
    import subprocess
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=30)
    assert p.returncode == 1, p
    assert b"/dev/kvm" in p.stderr and b"kvm-box" in p.stderr, p
