#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Snapshot benchmark: kiln's Full snapshot and restore against QEMU's migration to a file and
-incoming from it, same kernel, test initramfs, memory size and 1 vCPU, in one run. For each
guest size (a guest booted to its shell, then --fill-mib MiB of random data written to its
tmpfs so the snapshot carries real memory) it reports, over --runs runs (default 5) of each
VMM's part interleaved (kiln, QEMU, kiln, ...), medians with their min-max and kiln/QEMU ratios
of

  - save: PUT /snapshot/create of the paused VM, request to response; QEMU: `migrate` to
    "exec:cat > FILE" of the stopped VM until query-migrate says completed (max-bandwidth
    lifted: QEMU's default 128 MiB/s throttle is a live-migration policy)
  - sizes: kiln's state file, its memory file (sparse: zero pages are holes; allocated and
    apparent size), QEMU's migration file
  - PUT /snapshot/load (resume_vm) into a waiting `kiln --api-sock`, request to response (the
    vCPUs run when it returns), with the memory File backend and the Uffd backend
    (tests/tools/uffd_handler.c); kiln's own "loaded in N us" log figure; QEMU's analogue:
    `-incoming defer`, then `migrate-incoming` request until query-status says running
  - process start to running: `kiln restore` (its "loaded in" log line on stderr) against
    `qemu -incoming "exec:cat FILE"` (query-status polled every 2 ms)
  - to the first console answer: `echo` typed on the serial console once the VM runs, until
    the guest's answer, from the load request or from process start as above

Live migration (a second table per size): kiln's PUT /migrate (its own API extension) from a
guest booted through the API to `kiln restore --incoming tcp:...`, against QEMU's `migrate`
over TCP to `-incoming tcp:...` (max-bandwidth lifted, downtime-limit left at QEMU's default),
both while the guest rewrites a 16 MiB tmpfs file in a loop (dd from /dev/urandom) after the
same fill: total time, downtime, rounds (QEMU: dirty-sync-count), MiB sent, and the time from
the migrate request to the destination's console answer. A QEMU migration that has not
completed within MIGRATION_TIMEOUT is cancelled, reported as not converged and left out of
QEMU's figures. A repetition that fails (a VMM dies or times out, a reply does not parse) is
reported and run again (bench/common.py).

Run it where /dev/kvm works: `scripts/bench snapshot [--sizes 256,2048] [--runs N]
[--only restore|migration]` (it uses scripts/kvm-box on hosts without hardware KVM). Times
measured in the box are emulator times; only the ratios carry over.
"""
import argparse
import itertools
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/integration"))
from conftest import Shell  # noqa: E402
from fcapi import call, wait_for_socket  # noqa: E402

from common import RepetitionFailed, interleaved, table  # noqa: E402

KILN = ROOT / "build/kiln"
UFFD_SRC = ROOT / "tests/tools/uffd_handler.c"
UFFD = ROOT / "build/uffd_handler"
KERNEL = ROOT / ".cache/kernel/cloud/vmlinuz"
INITRD = ROOT / ".cache/initramfs/test.cpio.gz"
CMDLINE = "console=ttyS0 reboot=k panic=1 kiln.test="
BOOT_TIMEOUT = 600   # an L2 boot in the box takes 15-20 s; leave room for a loaded host
STEP_TIMEOUT = 600   # one save, load or console answer
MIGRATION_TIMEOUT = 600  # a live migration of a busy guest (QEMU may iterate for long)
SOURCE_EXIT_TIMEOUT = 60  # a kiln migration source's exit, after the destination answered
LOADED = re.compile(r"snapshot \S+ loaded in (\d+) us")
LISTENING = re.compile(r"waiting for a migration on tcp:")
MIGRATED = re.compile(r"migration completed: (\d+) us in all, downtime (\d+) us, (\d+) rounds, "
                      r"(\d+) MiB sent")
# The source's split of its downtime (µs after the pause): state saved, last pages sent, state
# sent; the rest is the destination's restore and its answer.
DOWNTIME = re.compile(r"migration downtime: state saved at (\d+) us, last (\d+) pages sent at "
                      r"(\d+) us, (\d+) bytes of state at (\d+) us")
BUSY = "(while true; do dd if=/dev/urandom of=/tmp/busy bs=1M count=16 2>/dev/null; done) & true"
SERIAL = itertools.count(1)  # file names in the temp dir, unique across sizes and reps


def in_box():
    try:
        return "kiln.box." in open("/proc/cmdline").read()
    except OSError:
        return False


def ensure_uffd_handler():
    if not UFFD.exists() or UFFD.stat().st_mtime < UFFD_SRC.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(UFFD), str(UFFD_SRC)], check=True)


def ms_since(t0):
    return (time.monotonic() - t0) * 1000


def api(sock, method, path, body=None, timeout=STEP_TIMEOUT):
    status, reply = call(sock, method, path, body, timeout=timeout)
    if status not in (200, 204):
        raise RuntimeError(f"{method} {path} {json.dumps(body)}: {status} {reply}")
    return reply


def console_answer(sh, timeout=STEP_TIMEOUT):
    """Type a command on the guest's console and wait for its answer."""
    out = sh.check("echo kiln-pong", timeout=timeout)
    if "kiln-pong" not in out:
        raise RuntimeError(f"unexpected console answer {out!r}")


def wait_path(path, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(0.001)


def wait_api(sock, sh):
    try:
        wait_for_socket(sock, sh.proc)
    except AssertionError as e:
        raise RuntimeError(f"{e}; stderr:\n{sh.err()[-2000:]}") from None


def wait_log(sh, pattern, timeout=STEP_TIMEOUT):
    """Poll kiln's stderr (Shell keeps it in a file) for @pattern; returns the match."""
    deadline = time.monotonic() + timeout
    while True:
        m = pattern.search(sh.err())
        if m:
            return m
        if sh.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{pattern.pattern!r} not logged (kiln exit {sh.proc.poll()}); "
                               f"stderr:\n{sh.err()[-2000:]}")
        time.sleep(0.002)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads(pid):
    """A hung process's threads (name, state, kernel wait channel) and their stacks (gdb)."""
    lines = []
    try:
        for t in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            d = f"/proc/{pid}/task/{t}"
            try:
                with open(d + "/comm") as c, open(d + "/wchan") as w, open(d + "/stat") as st:
                    lines.append(f"  thread {t} {c.read().strip()}: state "
                                 f"{st.read().rsplit(')', 1)[1].split()[0]}, wchan {w.read()}")
            except OSError:
                pass
    except OSError as e:
        lines.append(f"  {e}")
    if shutil.which("gdb"):
        try:
            bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=120).stdout
            lines.append(bt[-6000:])
        except subprocess.TimeoutExpired:
            lines.append("  (gdb timed out)")
    return "\n".join(lines)


def file_sizes(path):
    st = os.stat(path)
    return st.st_size, st.st_blocks * 512


class Qmp:
    """A QMP client on QEMU's Unix socket: connects as soon as it accepts, skips events."""

    def __init__(self, path, proc, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                break
            except OSError:
                s.close()
                if proc.poll() is not None:
                    raise RuntimeError(f"QEMU exited ({proc.returncode}) before QMP accepted")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"QMP {path} did not accept within {timeout} s")
                time.sleep(0.001)
        s.settimeout(STEP_TIMEOUT)
        self.sock = s
        self.f = s.makefile("rwb")
        self.f.readline()  # greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, **args):
        req = {"execute": cmd, **({"arguments": args} if args else {})}
        self.f.write(json.dumps(req).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError(f"QMP closed during {cmd}")
            msg = json.loads(line)
            if "event" in msg:
                continue
            if "error" in msg:
                raise RuntimeError(f"QMP {cmd} {args}: {msg['error']}")
            return msg["return"]

    def wait_status(self, want, timeout=STEP_TIMEOUT, poll=0.002):
        deadline = time.monotonic() + timeout
        while True:
            status = self.execute("query-status")["status"]
            if status == want:
                return
            if status not in ("inmigrate", "prelaunch", "restore-vm") or time.monotonic() > deadline:
                raise RuntimeError(f"QEMU status {status!r}, waiting for {want!r}")
            time.sleep(poll)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


class Bench:
    def __init__(self, tmp, mib, fill_mib):
        self.tmp, self.mib, self.fill_mib = tmp, mib, fill_mib
        self.shells, self.procs = [], []
        self.qemu_downtime_limit = None  # ms, as query-migrate-parameters reports it

    def path(self, what):
        return str(self.tmp / f"{what}-{next(SERIAL)}")

    def shell(self, argv):
        sh = Shell(argv, ready=False)
        self.shells.append(sh)
        return sh

    def popen(self, argv, **kw):
        proc = subprocess.Popen([str(a) for a in argv], **kw)
        self.procs.append(proc)
        return proc

    def cleanup(self):
        for sh in self.shells:
            sh.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.shells, self.procs = [], []

    def fill(self, sh):
        sh.check(f"mkdir -p /tmp && dd if=/dev/urandom of=/tmp/fill bs=1M count={self.fill_mib} "
                 f"2>/dev/null && sync", timeout=STEP_TIMEOUT)

    # ---- kiln ----

    def kiln_boot(self, sock):
        """A guest booted through the API to its shell, memory dirtied: its Shell."""
        sh = self.shell([KILN, "--api-sock", sock, "--level", "Info"])
        wait_api(sock, sh)
        api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": self.mib})
        api(sock, "PUT", "/boot-source", {"kernel_image_path": str(KERNEL),
                                          "initrd_path": str(INITRD), "boot_args": CMDLINE})
        api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        sh.wait_ready(BOOT_TIMEOUT)
        self.fill(sh)
        return sh

    def kiln_save(self, snap, mem):
        """Boot through the API, dirty memory, pause, snapshot: create ms."""
        sock = self.path("src.sock")
        sh = None
        try:
            sh = self.kiln_boot(sock)
            api(sock, "PATCH", "/vm", {"state": "Paused"})
            t0 = time.monotonic()
            api(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": snap,
                                                  "mem_file_path": mem})
            return ms_since(t0)
        finally:
            if sh:
                sh.close()

    def kiln_load(self, snap, mem, backend):
        """PUT /snapshot/load into a waiting kiln: (request -> response ms, request -> console
        answer ms, kiln's "loaded in" ms, uffd faults served or None)."""
        sock = self.path("dst.sock")
        handler = None
        if backend == "Uffd":
            uds = self.path("uffd.sock")
            handler = self.popen([UFFD, uds, mem], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_path(uds, handler)
            mem_backend = {"backend_type": "Uffd", "backend_path": uds}
        else:
            mem_backend = {"backend_type": "File", "backend_path": mem}
        sh = self.shell([KILN, "--api-sock", sock, "--level", "Info"])
        try:
            wait_api(sock, sh)
            t0 = time.monotonic()
            api(sock, "PUT", "/snapshot/load", {"snapshot_path": snap, "mem_backend": mem_backend,
                                                "resume_vm": True})
            running = ms_since(t0)
            console_answer(sh)
            answer = ms_since(t0)
            loaded = int(wait_log(sh, LOADED, 10).group(1)) / 1000
        finally:
            sh.close()
        faults = None
        if handler:
            try:
                _, err = handler.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                handler.kill()
                _, err = handler.communicate()
                raise RuntimeError(f"uffd_handler did not exit after kiln: {err.decode()[-2000:]}")
            m = re.search(rb"(\d+) faults served", err)
            faults = int(m.group(1)) if m else None
            if handler.returncode != 0:
                raise RuntimeError(f"uffd_handler exited {handler.returncode}: {err.decode()[-2000:]}")
        return running, answer, loaded, faults

    def kiln_restore_cli(self, snap, mem):
        """`kiln restore`: (process start -> "loaded" logged ms, -> console answer ms)."""
        t0 = time.monotonic()
        sh = self.shell([KILN, "restore", "--snapshot", snap, "--mem-file", mem, "--level", "Info"])
        try:
            wait_log(sh, LOADED)
            running = ms_since(t0)
            console_answer(sh)
            return running, ms_since(t0)
        finally:
            sh.close()

    def kiln_migrate(self):
        """PUT /migrate of a busy guest to `kiln restore --incoming`: {metric: value} with the
        source's logged total, downtime, rounds and MiB, and request -> destination console
        answer ms."""
        sock, port = self.path("mig.sock"), free_port()
        url = f"tcp:127.0.0.1:{port}"
        src = self.kiln_boot(sock)
        # Plain TCP, as QEMU's tcp: migration it is compared with (TLS is measured apart).
        dst = self.shell([KILN, "restore", "--incoming", url, "--insecure-plain-tcp",
                          "--level", "Info"])
        # It accepts a single connection: its log line, not a probe, says it listens.
        wait_log(dst, LISTENING, 60)
        src.check(BUSY)
        time.sleep(1)  # the writer under way
        t0 = time.monotonic()
        api(sock, "PUT", "/migrate", {"destination_url": url, "insecure_plain_tcp": True})
        deadline = t0 + MIGRATION_TIMEOUT
        while not LOADED.search(dst.err()):
            failed = "migration failed" in src.err()
            if failed or src.proc.poll() not in (None, 0) or dst.proc.poll() is not None \
                    or time.monotonic() > deadline:
                if failed:
                    why = "failed"
                elif src.proc.poll() is not None or dst.proc.poll() is not None:
                    why = "a kiln exited"
                else:
                    why = f"the destination did not load within {MIGRATION_TIMEOUT} s"
                status = "(source gone)"
                if src.proc.poll() is None:
                    try:
                        status = call(sock, "GET", "/migrate", timeout=10)
                    except Exception as e:  # noqa: BLE001 (reported below)
                        status = repr(e)
                raise RuntimeError(
                    f"kiln migration to {url}: {why}; GET /migrate: {status}; source exit "
                    f"{src.proc.poll()}, destination exit {dst.proc.poll()}\n"
                    f"--- source stderr ---\n{src.err()[-2000:]}\n"
                    f"--- destination stderr ---\n{dst.err()[-2000:]}")
            time.sleep(0.002)
        console_answer(dst)
        answer = ms_since(t0)
        r = {}
        try:
            rc = src.proc.wait(timeout=SOURCE_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        done = MIGRATED.search(src.err())
        if rc is None and done:
            # Completed, the guest runs on the destination, but the source hangs: kiln's bug,
            # not the figures'. Say so (with its threads) and kill it.
            r["kiln mig note"] = (f"source logged 'migration completed' but had not exited "
                                  f"{SOURCE_EXIT_TIMEOUT} s after the destination's console "
                                  f"answer (killed; its threads are on stderr)")
            print(f"kiln migration source {src.proc.pid} hangs after completing; stderr tail:\n"
                  f"{src.err()[-1500:]}\n{threads(src.proc.pid)}", file=sys.stderr, flush=True)
        elif rc != 0 or not done:
            raise RuntimeError(f"kiln migration source: exit {rc}, "
                               f"{'a' if done else 'no'} completion line; stderr:\n"
                               f"{src.err()[-2000:]}")
        total, down, rounds, mib = (int(g) for g in done.groups())
        r.update({"kiln mig total ms": total / 1000, "kiln mig downtime ms": down / 1000,
                  "kiln mig rounds": rounds, "kiln mig MiB": mib, "kiln mig answer ms": answer})
        split = DOWNTIME.search(src.err())
        if split:
            saved, last, sent, _, state = (int(g) for g in split.groups())
            r.update({"kiln down saved ms": saved / 1000, "kiln down last pages": last,
                      "kiln down pages ms": (sent - saved) / 1000,
                      "kiln down state ms": (state - sent) / 1000,
                      "kiln down destination ms": (down - state) / 1000})
        loaded = LOADED.search(dst.err())
        if loaded:
            r["kiln down load ms"] = int(loaded.group(1)) / 1000
        return r

    # ---- QEMU ----

    def qemu_argv(self, qmp, *extra):
        return ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-M", "microvm",
                "-m", f"{self.mib}M", "-smp", "1", "-nodefaults", "-no-user-config",
                "-display", "none", "-no-reboot", "-serial", "stdio",
                "-kernel", KERNEL, "-initrd", INITRD, "-append", CMDLINE,
                "-qmp", f"unix:{qmp},server=on,wait=off", *extra]

    def qemu_save(self, out):
        """Boot, dirty memory, stop, migrate to @out: migrate -> completed ms. Without the global
        state section the destination runs on load (as kiln's resume_vm) although the source was
        stopped; otherwise it would stay paused as the source was."""
        qsock = self.path("qmp-src.sock")
        sh = self.shell(self.qemu_argv(qsock, "-global", "migration.store-global-state=off"))
        qmp = None
        try:
            qmp = Qmp(qsock, sh.proc)
            sh.wait_ready(BOOT_TIMEOUT)
            self.fill(sh)
            qmp.execute("stop")
            qmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
            if qmp.execute("query-migrate-parameters")["max-bandwidth"] != 1 << 40:
                raise RuntimeError("QEMU kept its migration bandwidth limit")
            t0 = time.monotonic()
            qmp.execute("migrate", uri=f"exec:cat > {out}")
            deadline = time.monotonic() + STEP_TIMEOUT
            while True:
                info = qmp.execute("query-migrate")
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled") or time.monotonic() > deadline:
                    raise RuntimeError(f"QEMU migrate: {info}")
                time.sleep(0.002)
            return ms_since(t0)
        finally:
            if qmp:
                qmp.close()
            sh.close()

    def qemu_incoming(self, src):
        """`-incoming "exec:cat SRC"`: (process start -> running ms, -> console answer ms)."""
        qsock = self.path("qmp-dst.sock")
        t0 = time.monotonic()
        sh = self.shell(self.qemu_argv(qsock, "-incoming", f"exec:cat {src}"))
        qmp = None
        try:
            qmp = Qmp(qsock, sh.proc)
            qmp.wait_status("running")
            running = ms_since(t0)
            console_answer(sh)
            return running, ms_since(t0)
        finally:
            if qmp:
                qmp.close()
            sh.close()

    def qemu_incoming_defer(self, src):
        """`-incoming defer`, then migrate-incoming: (request -> running ms, -> console answer)."""
        qsock = self.path("qmp-defer.sock")
        sh = self.shell(self.qemu_argv(qsock, "-incoming", "defer"))
        qmp = None
        try:
            qmp = Qmp(qsock, sh.proc)
            qmp.wait_status("inmigrate")
            t0 = time.monotonic()
            qmp.execute("migrate-incoming", uri=f"exec:cat {src}")
            qmp.wait_status("running")
            running = ms_since(t0)
            console_answer(sh)
            return running, ms_since(t0)
        finally:
            if qmp:
                qmp.close()
            sh.close()

    def qemu_migrate(self):
        """`migrate` of a busy guest over TCP to `-incoming tcp:...`: {metric: value} from
        query-migrate (total-time, downtime, dirty-sync-count, transferred) and migrate ->
        destination console answer ms; all None and "qemu mig note" set if it did not complete
        within MIGRATION_TIMEOUT (then cancelled) or failed."""
        qsrc, qdst, port = self.path("qmp-msrc.sock"), self.path("qmp-mdst.sock"), free_port()
        uri = f"tcp:127.0.0.1:{port}"
        state = ("-global", "migration.store-global-state=off")
        src = self.shell(self.qemu_argv(qsrc, *state))
        qmp = Qmp(qsrc, src.proc)
        try:
            src.wait_ready(BOOT_TIMEOUT)
            self.fill(src)
            dst = self.shell(self.qemu_argv(qdst, *state, "-incoming", uri))
            dqmp = Qmp(qdst, dst.proc)
            try:
                # -incoming tcp listens before the monitor runs: inmigrate means it accepts.
                dqmp.wait_status("inmigrate", 60)
                qmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
                params = qmp.execute("query-migrate-parameters")
                if params["max-bandwidth"] != 1 << 40:
                    raise RuntimeError("QEMU kept its migration bandwidth limit")
                self.qemu_downtime_limit = params.get("downtime-limit")
                src.check(BUSY)
                time.sleep(1)  # the writer under way
                t0 = time.monotonic()
                qmp.execute("migrate", uri=uri)
                deadline = t0 + MIGRATION_TIMEOUT
                while True:
                    info = qmp.execute("query-migrate")
                    status = info.get("status")
                    if status == "completed":
                        break
                    if status in ("failed", "cancelled") or time.monotonic() > deadline:
                        ram = info.get("ram", {})
                        if status in ("failed", "cancelled"):
                            note = f"{status}: {info.get('error-desc', info)}"
                        else:
                            note = (f"did not converge within {MIGRATION_TIMEOUT} s (status "
                                    f"{status}, {ram.get('dirty-sync-count')} iterations, "
                                    f"{ram.get('transferred', 0) / (1 << 20):.0f} MiB sent, "
                                    f"dirty rate {ram.get('dirty-pages-rate')} pages/s)")
                            try:
                                qmp.execute("migrate_cancel")
                            except RuntimeError:
                                pass
                        return {"qemu mig total ms": None, "qemu mig downtime ms": None,
                                "qemu mig rounds": None, "qemu mig MiB": None,
                                "qemu mig answer ms": None, "qemu mig note": note}
                    time.sleep(0.002)
                dqmp.wait_status("running")
                console_answer(dst)
                answer = ms_since(t0)
            finally:
                dqmp.close()
        finally:
            qmp.close()
        ram = info.get("ram", {})
        return {"qemu mig total ms": info.get("total-time"),
                "qemu mig downtime ms": info.get("downtime"),
                "qemu mig rounds": ram.get("dirty-sync-count"),
                "qemu mig MiB": ram["transferred"] / (1 << 20) if "transferred" in ram else None,
                "qemu mig answer ms": answer}

    def run(self, measure):
        """One repetition: @measure() with its VMMs, files and processes cleaned up after; a
        repetition that fails (a VMM died or timed out, a reply did not parse) raises
        RepetitionFailed, and bench/common.py runs it again."""
        try:
            return measure()
        except (RuntimeError, AssertionError, OSError, ValueError, subprocess.SubprocessError) as e:
            raise RepetitionFailed(f"{type(e).__name__}: {e}") from e
        finally:
            self.cleanup()
            for f in self.tmp.iterdir():
                f.unlink()

    def kiln_rep(self):
        """Save, the loads and `kiln restore`, once; returns {metric: value}."""
        r = {}
        snap, mem = self.path("vm.snap"), self.path("vm.mem")
        r["kiln save ms"] = self.kiln_save(snap, mem)
        r["state KiB"] = os.stat(snap).st_size / 1024
        apparent, alloc = file_sizes(mem)
        r["mem apparent MiB"], r["mem allocated MiB"] = apparent / (1 << 20), alloc / (1 << 20)
        r["kiln on disk MiB"] = (os.stat(snap).st_blocks * 512 + alloc) / (1 << 20)
        for backend in ("File", "Uffd"):
            running, answer, loaded, faults = self.kiln_load(snap, mem, backend)
            r[f"load {backend} running ms"] = running
            r[f"load {backend} answer ms"] = answer
            r[f"load {backend} logged ms"] = loaded
            if faults is not None:
                r["uffd faults"] = faults
        r["cli running ms"], r["cli answer ms"] = self.kiln_restore_cli(snap, mem)
        return r

    def qemu_rep(self):
        """Migrate to a file and the two incomings, once; returns {metric: value}."""
        r = {}
        mig = self.path("vm.mig")
        r["qemu save ms"] = self.qemu_save(mig)
        r["migration MiB"] = os.stat(mig).st_size / (1 << 20)
        r["qemu defer running ms"], r["qemu defer answer ms"] = self.qemu_incoming_defer(mig)
        r["qemu incoming running ms"], r["qemu incoming answer ms"] = self.qemu_incoming(mig)
        return r


# (label, kiln metric, QEMU metric or None)
ROWS = [
    ("save: snapshot/create | migrate (ms)", "kiln save ms", "qemu save ms"),
    ("state file (KiB)", "state KiB", None),
    ("memory file allocated (MiB)", "mem allocated MiB", None),
    ("memory file apparent (MiB)", "mem apparent MiB", None),
    ("on disk: state+memory | migration file (MiB)", "kiln on disk MiB", "migration MiB"),
    ("load request -> running, File (ms)", "load File running ms", "qemu defer running ms"),
    ("load request -> running, Uffd (ms)", "load Uffd running ms", "qemu defer running ms"),
    ("kiln log 'loaded in', File (ms)", "load File logged ms", None),
    ("kiln log 'loaded in', Uffd (ms)", "load Uffd logged ms", None),
    ("load request -> console answer, File (ms)", "load File answer ms", "qemu defer answer ms"),
    ("load request -> console answer, Uffd (ms)", "load Uffd answer ms", "qemu defer answer ms"),
    ("exec -> running: restore | -incoming (ms)", "cli running ms", "qemu incoming running ms"),
    ("exec -> console answer: restore | -incoming (ms)", "cli answer ms", "qemu incoming answer ms"),
    ("uffd_handler faults served (to the console answer)", "uffd faults", None),
]


MIG_ROWS = [
    ("migration total time (ms)", "kiln mig total ms", "qemu mig total ms"),
    ("downtime (ms)", "kiln mig downtime ms", "qemu mig downtime ms"),
    ("rounds | dirty-sync-count", "kiln mig rounds", "qemu mig rounds"),
    ("sent (MiB)", "kiln mig MiB", "qemu mig MiB"),
    ("kiln downtime: pause -> state saved (ms)", "kiln down saved ms", None),
    ("kiln downtime: last dirty pages (count)", "kiln down last pages", None),
    ("kiln downtime: sending them (ms)", "kiln down pages ms", None),
    ("kiln downtime: sending the state (ms)", "kiln down state ms", None),
    ("kiln downtime: destination restore + answer (ms)", "kiln down destination ms", None),
    ("kiln downtime: of which the destination's load (ms)", "kiln down load ms", None),
    ("PUT /migrate | migrate -> dest console answer (ms)", "kiln mig answer ms",
     "qemu mig answer ms"),
]
VMMS = ("kiln", "qemu")


def samples(rows, runs):
    """table()'s {label: {vmm: [values]}} from @runs ({vmm: [{metric: value}]}); a QEMU
    migration that did not complete has None values, left out."""
    return {label: {vmm: [r[k] for r in runs[vmm] if r.get(k) is not None]
                    for vmm, k in zip(VMMS, keys) if k}
            for label, *keys in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,2048", help="guest sizes in MiB, comma-separated")
    ap.add_argument("--runs", type=int, default=5, help="repetitions of each VMM's part")
    ap.add_argument("--fill-mib", type=int, default=64, help="MiB of random data the guest writes")
    ap.add_argument("--only", choices=("restore", "migration"),
                    help="run one part: snapshot save/restore, or live migration (default both)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    parts = [args.only] if args.only else ["restore", "migration"]
    if "restore" in parts:
        ensure_uffd_handler()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="kiln-bench-snapshot-"))
    emulated = ("figures are emulator times (nested KVM inside scripts/kvm-box): only the ratios "
                "mean anything\n" if in_box() else "")
    try:
        for mib in sizes:
            bench = Bench(tmp, mib, args.fill_mib)
            if "restore" in parts:
                parts_of = {"kiln": bench.kiln_rep, "qemu": bench.qemu_rep}
                runs = interleaved(VMMS, lambda vmm: bench.run(parts_of[vmm]), args.runs)
                table(f"snapshot benchmark, {mib} MiB guest ({args.fill_mib} MiB dirtied), 1 vCPU, "
                      f"kernel {KERNEL.name}: {args.runs} runs each, interleaved; median [min-max]",
                      samples(ROWS, runs))
                print(f"{emulated}QEMU: -M microvm; its load request is migrate-incoming into "
                      "`-incoming defer`\n", flush=True)
            if "migration" in parts:
                parts_of = {"kiln": bench.kiln_migrate, "qemu": bench.qemu_migrate}
                runs = interleaved(VMMS, lambda vmm: bench.run(parts_of[vmm]), args.runs)
                table(f"live migration benchmark, {mib} MiB guest ({args.fill_mib} MiB dirtied, "
                      "then a 16 MiB file rewritten in a loop during the migration), 1 vCPU, over "
                      f"TCP on 127.0.0.1: {args.runs} runs each, interleaved; median [min-max]",
                      samples(MIG_ROWS, runs))
                print(f"{emulated}kiln: PUT /migrate -> `kiln restore --incoming`, figures from "
                      "the source's 'migration completed' log line\nQEMU: migrate -> -incoming "
                      "tcp, max-bandwidth lifted, downtime-limit left at its default "
                      f"({bench.qemu_downtime_limit} ms); figures from query-migrate")
                notes = [f"{vmm}: {r[vmm + ' mig note']}" for vmm in VMMS for r in runs[vmm]
                         if vmm + " mig note" in r]
                for note in notes:
                    print(note.replace("qemu:", "QEMU:", 1))
                if any(n.startswith("qemu:") for n in notes):
                    print("QEMU's figures are over the runs that completed")
                print(flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
