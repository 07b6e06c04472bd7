# SPDX-License-Identifier: Apache-2.0
"""virtio-console as a second console: a shell session through hvc0 over kiln's Unix socket
(the serial console stays usable beside it), the guest's output appended to a file, bad
--console values."""
import socket
import time

import pytest

from conftest import Shell, run_kiln


def read_until(s, marker, timeout=120):
    out = b""
    deadline = time.monotonic() + timeout
    s.settimeout(5)
    while marker not in out:
        assert time.monotonic() < deadline, out[-2000:]
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        assert chunk, out[-2000:]
        out += chunk
    return out.decode(errors="replace")


def test_shell_session_over_the_socket(kvm, kiln, bzimage, initrd, tmp_path):
    path = tmp_path / "hvc.sock"
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--cmdline",
                "console=ttyS0 kiln.test=", "--console", f"socket={path}"])
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.sendall(b"tty; echo HVC-$((6 * 7))\n")
        out = read_until(s, b"HVC-42")
        assert "/dev/hvc0" in out, out
        # A second client waits until the first leaves; the session goes on for the next one.
        s.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        s.sendall(b"echo AGAIN-$((2 + 3))\n")
        read_until(s, b"AGAIN-5")
        # The serial console works beside it.
        assert "ttyS0" in sh.check("tty")
        s.close()
        assert sh.poweroff() == 0
        assert not path.exists()  # kiln removes its socket
    finally:
        sh.close()


def test_output_to_a_file(kvm, kiln, bzimage, initrd, tmp_path):
    out = tmp_path / "hvc.log"
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--cmdline",
                "console=ttyS0 kiln.test=", "--console", f"file={out}", "--transport", "mmio"])
    try:
        sh.check("echo to-the-file-$((40 + 2)) > /dev/hvc0")
        deadline = time.monotonic() + 30
        while "to-the-file-42" not in out.read_text():
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        assert sh.poweroff() == 0
    finally:
        sh.close()


@pytest.mark.parametrize("value,message", [
    ("tcp=1", "\"tcp=1\" is not socket=PATH or file=PATH"),
    ("socket=", "\"socket=\" is not socket=PATH or file=PATH"),
    ("file=/no/such/dir/x", "--console: console: open /no/such/dir/x: No such file or directory"),
])
def test_bad_console_values(kiln, bzimage, value, message):
    g = run_kiln(kiln, "run", "--kernel", bzimage, "--console", value, timeout=60)
    assert g.returncode in (1, 2) and message in g.err, g
