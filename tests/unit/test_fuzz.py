# SPDX-License-Identifier: Apache-2.0
"""Run kiln's libFuzzer targets (tests/fuzz/: hostile virtio drivers, port I/O and MMIO on every
device, snapshot images, MMDS, Firecracker's JSON, seccomp filter files) for a short time each:
scripts/fuzz builds them with clang's fuzzer, address and undefined-behaviour sanitizers and fails
on the first crash or sanitizer report."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_fuzz_targets_find_nothing():
    proc = subprocess.run([str(ROOT / "scripts/fuzz"), "10"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Done" in proc.stdout, proc.stdout[-4000:]
