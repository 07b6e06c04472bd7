# SPDX-License-Identifier: Apache-2.0
"""memtest86+ (Debian 12's package, 6.10) as a guest: a bzImage that is no Linux kernel. It
loads through the 64-bit boot protocol, sizes RAM from the zero page's e820 map, times itself
with the PIT and the TSC, and mirrors its screen on COM1 with ANSI escapes, reading keys from
it. The test drives its configuration menu over the serial line to leave out the bit fade test
(160 s of sleeping in a first pass) and judges by memtest's own status line: the first pass
ends with "Status: Pass", the pass counter at 1 and no errors."""
import os
import pathlib
import re
import subprocess
import time

import pytest

MEMTEST = pathlib.Path("/boot/memtest86+x64.bin")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
# In the 3 s pause at start: <F1> configuration, <F1> test selection, <F2> remove one test,
# test 10 (bit fade), <Enter>; then <F10> twice to leave both menus (serial keys are digits).
SKIP_BIT_FADE = b"11210\r00"


def screen(raw):
    """The serial output as text: cursor moves and colours become a space each."""
    return ANSI.sub(b" ", raw).decode("latin-1")


def read_until(proc, raw, done, timeout, what):
    """Append proc's output to @raw until done(text) holds; fail naming @what after @timeout s."""
    deadline = time.monotonic() + timeout
    while not done(screen(raw)):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{what} not seen within {timeout} s (kiln exit {proc.poll()}); "
                                 f"screen tail:\n{screen(raw)[-3000:]}")
        chunk = proc.stdout.read()
        if chunk:
            raw += chunk
        else:
            time.sleep(0.05)


def test_first_pass_completes(kvm, kiln):
    if not MEMTEST.exists():
        pytest.fail(f"{MEMTEST} is missing: scripts/deps.sh installs Debian's memtest86+")
    proc = subprocess.Popen([str(kiln), "run", "--kernel", MEMTEST, "--memory", "16M",
                             "--cmdline", "console=ttyS0,115200"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.set_blocking(proc.stdout.fileno(), False)
    raw = bytearray()
    try:
        read_until(proc, raw, lambda t: "Memtest86+ v6" in t, 60, "memtest's screen")
        proc.stdin.write(SKIP_BIT_FADE)
        proc.stdin.flush()
        read_until(proc, raw, lambda t: "Status: Pass" in t and re.search(r"Pass:\s+1\s", t),
                   240, "the end of the first pass")
    finally:
        proc.kill()
        err = proc.communicate()[1].decode(errors="replace")
    text = screen(raw)
    assert re.search(r"Memory\s*:\s+16MB", text), text[:2000]  # the e820 map's RAM
    assert re.search(r"Errors:\s+0\s", text) and not re.search(r"Errors:\s+[1-9]", text), text[-3000:]
    assert "[Address test, walking ones" in text, text[-3000:]
    assert "[Bit fade test" not in text, "the menu keys did not arrive: " + text[-3000:]
    assert "KVM internal error" not in err, err
