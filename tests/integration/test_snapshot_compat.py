# SPDX-License-Identifier: Apache-2.0
"""Snapshot compatibility across kiln versions: every fixture under tests/fixtures/snapshot/v*/
(a snapshot of the tick guest, tests/guests/tick, written by an older kiln; see the README
there) is restored with the kiln built from this tree, and the guest must carry on counting
from the memory the snapshot saved rather than start over."""
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT

FIXTURES = ROOT / "tests/fixtures/snapshot"
TICK = re.compile(rb"^KILN-TICK (\d+)\r?$", re.M)
LINES = 3


def fixture_dirs():
    return sorted(d for d in FIXTURES.glob("v*") if d.is_dir())


def test_fixtures_present():
    """The directories the test below walks exist (a moved or emptied tree fails here instead
    of passing with nothing restored)."""
    dirs = fixture_dirs()
    assert dirs, f"no snapshot fixtures under {FIXTURES}"
    for d in dirs:
        for name in ("vm.snap", "vm.mem.gz", "fixture.json"):
            assert (d / name).is_file(), f"{d / name} is missing"


@pytest.mark.parametrize("fixture", fixture_dirs(), ids=lambda d: d.name)
def test_restore_old_snapshot(kvm, kiln, fixture, tmp_path):
    """`kiln restore` of a snapshot another kiln wrote: the guest prints at least three more
    lines, the first one right after the last it printed before the snapshot (or the one after
    that, when the snapshot caught a line half-written), each one more than the line before."""
    meta = json.loads((fixture / "fixture.json").read_text())
    last = meta["last_tick"]
    mem = tmp_path / "vm.mem"
    with gzip.open(fixture / "vm.mem.gz", "rb") as src, open(mem, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert mem.stat().st_size == meta["mem_size_mib"] << 20

    err = tempfile.TemporaryFile(dir=tmp_path)
    proc = subprocess.Popen([str(kiln), "restore", "--snapshot", str(fixture / "vm.snap"),
                             "--mem-file", str(mem), "--level", "Info"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    out = b""
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.monotonic() + 120
        while len(TICK.findall(out)) < LINES:
            if time.monotonic() > deadline or proc.poll() is not None:
                break
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
            else:
                time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
        err.seek(0)
        log = err.read().decode(errors="replace")
        err.close()
    context = (f"fixture {fixture.name} ({meta}), kiln exit {proc.returncode}\n"
               f"--- console ---\n{out[-2000:].decode(errors='replace')}\n"
               f"--- stderr ---\n{log[-2000:]}")
    ticks = [int(n) for n in TICK.findall(out)]
    assert len(ticks) >= LINES, f"fewer than {LINES} KILN-TICK lines after restore; {context}"
    assert ticks[0] > last, f"the guest started over (first tick {ticks[0]}, saved {last}); {context}"
    assert ticks[0] <= last + 2, f"ticks lost between snapshot and restore; {context}"
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), f"ticks not consecutive; {context}"
