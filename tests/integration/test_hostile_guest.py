# SPDX-License-Identifier: Apache-2.0
"""A hostile guest: tests/guests/hostile runs as root in the guest for a minute, writing random
values of random sizes to every I/O port and MMIO register kiln claims (the legacy devices, PCI
config through CF8/CFC and ECAM, every virtio-pci BAR with its MSI-X table and PBA, the
virtio-mmio slots, the boot timer), resetting virtio devices in the middle of their requests and
handing them queues of random descriptors, while the guest's own drivers keep reading the
disks, drawing entropy and pinging. kiln neither crashes nor hangs: the guest reports and
powers off, and kiln exits 0 (or, now and then, the guest kernel panics over a device taken
from under its driver, and kiln exits 4 saying so). The same against kiln built with
AddressSanitizer and UndefinedBehaviorSanitizer (scripts/build's build-asan/, without seccomp: the sanitizer
runtime's own system calls are not kiln's), where any report fails the test."""
import os
import random

import pytest

from conftest import ROOT, boot

ASAN_KILN = ROOT / os.environ.get("KILN_ASAN_BUILD", "build-asan") / "kiln"
SECONDS = 60


@pytest.mark.parametrize("sanitized,transport", [(False, "pci"), (False, "mmio"), (True, "pci")],
                         ids=["pci", "mmio", "asan-pci"])
def test_hostile_guest(kvm, kiln, bzimage, initrd, tmp_path, sanitized, transport):
    if sanitized:
        assert ASAN_KILN.exists(), f"{ASAN_KILN} missing: scripts/build makes it"
        kiln = ASAN_KILN
    disk = tmp_path / "disk.img"
    disk.write_bytes(os.urandom(1 << 20))
    seed = random.randrange(1, 1 << 62)
    g = boot(kiln, bzimage, initrd, "hostile-all", "--transport", transport, "--memory", "512M",
             "--disk", f"{disk},engine=sync", "--disk", f"{disk},readonly=on", "--rng",
             "--net", "user", "--vsock", f"cid=3,uds={tmp_path / 'v.sock'}",
             "--balloon", "amount=16M,reporting=on,stats=1",
             "--console", f"file={tmp_path / 'console.txt'}",
             *(["--no-seccomp"] if sanitized else []),
             cmdline=f"kiln.secs={SECONDS} kiln.seed={seed}", timeout=SECONDS * 6 + 300)
    # Two orderly ends: the guest reports and powers off (exit 0), or its kernel gives up on
    # hardware that root took apart (a virtio driver's BUG on a device reset under it, ...) and
    # panics, which kiln reports (pvpanic: exit 4). Any other exit, a crash, a hang or a
    # sanitizer report is kiln's failure. pytest.fail: the whole console tail.
    panicked = g.returncode == 4 and "guest kernel panicked (pvpanic)" in g.err
    reported = g.returncode == 0 and g.facts.get("hostile") == "done" and " accesses " in g.out
    if not (reported or panicked):
        pytest.fail(f"seed {seed}: {g!r}")
    if sanitized and ("Sanitizer" in g.err or "runtime error" in g.err):
        pytest.fail(f"seed {seed}: {g!r}")
