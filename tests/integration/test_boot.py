# SPDX-License-Identifier: Apache-2.0
"""Boot Debian's stock cloud kernel under kiln and check what the guest sees."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import Shell, boot, wait_for

ACPI_TABLES = {"APIC", "DSDT", "FACP", "FACS"}


def check_facts(g, cpus, mem_mib):
    assert g.returncode == 0, g
    assert "KILN-FACTS-END" in g.out, g
    assert int(g.facts["nproc"]) == cpus, g
    assert int(g.facts["cpus_in_cpuinfo"]) == cpus, g
    mem_kb = int(g.facts["memtotal_kb"])
    # MemTotal is RAM minus what the kernel keeps for itself: within 15% below what we gave.
    assert mem_mib * 1024 * 0.85 < mem_kb <= mem_mib * 1024, g
    # The RTC gives the host's time (UTC); the guest read it at boot a few seconds ago.
    assert abs(int(g.facts["date_epoch"]) - time.time()) < 300, g
    assert ACPI_TABLES <= set(g.facts["acpi_tables"].split()), g
    # The LAPIC timer in TSC-deadline mode (CPUID.01H:ECX[24], as Firecracker and QEMU offer).
    assert g.facts["clockevent"] == "lapic-deadline", g


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_bzimage_smp(kvm, kiln, bzimage, initrd, cpus):
    g = boot(kiln, bzimage, initrd, "facts", "--cpus", cpus)
    check_facts(g, cpus, 512)


def test_pvh_vmlinux(kvm, kiln, vmlinux, initrd):
    g = boot(kiln, vmlinux, initrd, "facts", "--cpus", 2, "--memory", "384M")
    check_facts(g, 2, 384)


def test_memory_above_the_mmio_hole(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "facts", "--memory", "4G")
    check_facts(g, 1, 4096)


def test_plain_mib_memory(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "facts", "--memory", "256")
    check_facts(g, 1, 256)


def test_reboot_exit_code(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "reboot")
    assert g.returncode == 3, g


def test_reboot_reset_starts_the_machine_again(kvm, kiln, bzimage, initrd, tmp_path):
    """--reboot reset: the guest's reboot makes a new machine that boots the kernel again; what
    the guest wrote to its disk before is there after, and poweroff then ends kiln with 0."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    sh = Shell([kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--disk", disk,
                "--cmdline", "console=ttyS0 reboot=k kiln.test=", "--reboot", "reset"])
    try:
        sh.check("echo KILN-SURVIVED | dd of=/dev/vda conv=fsync 2>/dev/null")
        seen = len(sh.out)
        sh.proc.stdin.write(b"reboot\n")
        sh.proc.stdin.flush()
        sh._wait_for(b"Linux version", 240, seen)
        sh._wait_for(b"kiln# ", 240, sh._wait_for(b"KILN-INIT-READY", 240, seen))
        assert sh.check("head -c 13 /dev/vda").strip() == "KILN-SURVIVED"
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()
    assert sh.out.count(b"Linux version") == 2, sh.out[-3000:]


def test_panic_exit_code(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "panic")
    assert g.returncode == 4, g
    assert "Kernel panic" in g.out or "sysrq" in g.out.lower(), g


def test_poweroff_exit_code(kvm, kiln, vmlinux, initrd):
    g = boot(kiln, vmlinux, initrd, "poweroff")
    assert g.returncode == 0, g
    assert "reboot: Power down" in g.out, g


def test_sigterm_exit_code(kvm, kiln, bzimage, initrd):
    proc = subprocess.Popen([str(kiln), "run", "--kernel", str(bzimage), "--initrd", str(initrd),
                             "--cmdline", "console=ttyS0 kiln.test=hang"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(proc, "KILN-INIT-READY")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_serial_output_nobody_reads(kvm, kiln, bzimage, initrd, tmp_path):
    """The guest floods the serial console into a pipe nobody reads: its vCPU never blocks in
    kiln (the output waits in a bounded buffer, the guest sees the transmitter busy), so the
    API still pauses, snapshots and resumes it, and SIGTERM still ends kiln at once."""
    from fcapi import call, wait_for_socket
    sock = tmp_path / "api.sock"
    r, w = os.pipe()  # nobody ever reads r
    proc = subprocess.Popen([str(kiln), "--api-sock", str(sock), "--config-file",
                             str(write_config(tmp_path, bzimage, initrd, "flood"))],
                            stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    try:
        wait_for_socket(sock, proc)
        time.sleep(20)  # the guest boots and fills the pipe (64 KiB) and kiln's buffer
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}, timeout=60) == (204, None)
        assert call(sock, "PUT", "/snapshot/create",
                    {"snapshot_path": str(tmp_path / "s"), "mem_file_path": str(tmp_path / "m")},
                    timeout=120) == (204, None)
        assert call(sock, "PATCH", "/vm", {"state": "Resumed"}, timeout=60) == (204, None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
        os.close(r)


def write_config(tmp_path, bzimage, initrd, test):
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                        "boot_args": f"console=ttyS0 kiln.test={test}"},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}))
    return path


def test_interactive_shell_over_the_serial_console(kvm, kiln, bzimage, initrd):
    """What a user does: type at the shell prompt on the serial console."""
    proc = subprocess.Popen([str(kiln), "run", "--kernel", str(bzimage), "--initrd", str(initrd)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(proc, "KILN-INIT-READY")
        time.sleep(1)  # let the shell open the console before typing
        proc.stdin.write(b"uname -a; nproc; echo typed-$((6*7)); poweroff\n")
        proc.stdin.flush()
        out = wait_for(proc, "typed-42", timeout=120)
        assert proc.wait(timeout=120) == 0
        assert "Linux" in out and "cloud-amd64" in out
    finally:
        proc.kill()
        proc.wait()


def test_boot_timer_is_logged(kvm, kiln, bzimage, initrd):
    g = boot(kiln, bzimage, initrd, "poweroff", "--log-level", "info")
    assert g.returncode == 0, g
    assert "guest boot time" in g.err, g


@pytest.mark.parametrize("test,code", [("poweroff", 0), ("panic", 4), ("hang", 128 + signal.SIGTERM)])
def test_terminal_is_restored(kvm, kiln, bzimage, initrd, test, code):
    """On a terminal the console is raw while the guest runs and restored on every exit path."""
    import os
    import pty
    import termios

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([str(kiln), "run", "--kernel", str(bzimage), "--initrd", str(initrd),
                             "--cmdline", f"console=ttyS0 kiln.test={test}"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(proc, "KILN-INIT-READY")
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO  # raw
        if test == "hang":
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == code
        assert termios.tcgetattr(slave) == before
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
