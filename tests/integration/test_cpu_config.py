# SPDX-License-Identifier: Apache-2.0
"""Firecracker's machine-config `smt` and `cpu_template` through the API, against a real guest:
with smt the guest's kernel pairs its CPUs into cores of two threads (and keeps them paired
after a snapshot and restore), without it every core has one thread; an odd vCPU count with
smt is refused; each static CPU template is taken by PUT /machine-config and then, at
InstanceStart, refused with Firecracker's message unless it was made for this host's CPU
vendor and model (Firecracker's lists), and a template that fits shows the guest its CPU
signature. A custom template (PUT /cpu-config, or a file --config-file's "cpu-config" names)
hides a CPUID feature the guest has without it, replaces a static template set before it,
is refused at InstanceStart when it names a leaf or a KVM capability the host lacks, and
comes back with a restored snapshot. `kiln run --smt --cpu-template FILE` does the same."""
import json
import re
import subprocess

import pytest

from conftest import Shell
from fcapi import call, load_snapshot, snapshot, wait_for_socket

BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off kiln.test="
VCPUS = ("The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even "
         "number if SMT is enabled.")
WRONG_VENDOR = ("Start microvm error: Failed to get CPU template: CPU vendor mismatched between "
                "actual CPU and CPU template.")
WRONG_MODEL = ("Start microvm error: Failed to get CPU template: The current CPU model is not "
               "permitted to apply the CPU template.")
# Firecracker 1.16's static templates: the vendor and the CPU signatures (CPUID.1:EAX without
# the processor type) each may be used on, and the signature each shows the guest.
SKYLAKE, CASCADE_LAKE, ICE_LAKE, MILAN = 0x50654, 0x50657, 0x606a6, 0xa00f11
TEMPLATES = {
    "T2": ("GenuineIntel", {SKYLAKE, CASCADE_LAKE, ICE_LAKE}, 0x306f2),
    "T2S": ("GenuineIntel", {SKYLAKE, CASCADE_LAKE}, 0x306f2),
    "T2CL": ("GenuineIntel", {CASCADE_LAKE, ICE_LAKE}, 0x306f2),
    "C3": ("GenuineIntel", {SKYLAKE, CASCADE_LAKE, ICE_LAKE}, 0x306e4),
    "T2A": ("AuthenticAMD", {MILAN}, 0x306f2),
}


def host_cpu():
    """This host's CPU vendor and signature, from /proc/cpuinfo's first CPU."""
    info = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        if not key.strip():
            break
        info.setdefault(key.strip(), value.strip())
    family, model, stepping = int(info["cpu family"]), int(info["model"]), int(info["stepping"])
    base_family, ext_family = (15, family - 15) if family >= 15 else (family, 0)
    return info["vendor_id"], ((ext_family << 20) | ((model >> 4) << 16) | (base_family << 8) |
                               ((model & 0xf) << 4) | stepping)


def family_model(signature):
    """The family and model a guest's /proc/cpuinfo shows for CPUID.1:EAX @signature."""
    family, model = (signature >> 8) & 0xf, (signature >> 4) & 0xf
    if family in (6, 15):
        model |= ((signature >> 16) & 0xf) << 4
    if family == 15:
        family += (signature >> 20) & 0xff
    return family, model


def start(kiln, sock):
    sh = Shell([kiln, "--api-sock", sock], ready=False)
    wait_for_socket(sock, sh.proc)
    return sh


def configure(sock, bzimage, initrd, machine):
    assert call(sock, "PUT", "/machine-config", machine) == (204, None), machine
    assert call(sock, "PUT", "/boot-source", {"kernel_image_path": str(bzimage),
                                              "initrd_path": str(initrd),
                                              "boot_args": BOOT_ARGS}) == (204, None)


def boot(kiln, sock, bzimage, initrd, machine):
    sh = start(kiln, sock)
    try:
        configure(sock, bzimage, initrd, machine)
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (204, None)
        sh.wait_ready()
    except BaseException:
        sh.close()
        raise
    return sh


def sysfs(sh, cpu, name):
    text = sh.check(f"cat /sys/devices/system/cpu/cpu{cpu}/topology/{name}")
    return text.strip().splitlines()[-1].strip()


def check_topology(sh, cpus, smt):
    """Each CPU's thread siblings (its core) and package siblings, as the guest's kernel made
    them from CPUID."""
    assert re.findall(r"\b\d+\b", sh.check("nproc"))[-1] == str(cpus)
    for cpu in range(cpus):
        core = f"{cpu & ~1}-{cpu | 1}" if smt else str(cpu)
        assert sysfs(sh, cpu, "thread_siblings_list") == core, (cpu, sh.err())
        assert sysfs(sh, cpu, "core_siblings_list") == f"0-{cpus - 1}", cpu


@pytest.mark.parametrize("cpus,smt", [(2, True), (4, True), (2, False)])
def test_smt_topology(kvm, kiln, bzimage, initrd, tmp_path, cpus, smt):
    sock = tmp_path / "api.sock"
    sh = boot(kiln, sock, bzimage, initrd, {"vcpu_count": cpus, "mem_size_mib": 256, "smt": smt})
    try:
        status, machine = call(sock, "GET", "/machine-config")
        assert status == 200 and machine["smt"] is smt and "cpu_template" not in machine, machine
        assert call(sock, "GET", "/vm/config")[1]["machine-config"] == machine
        check_topology(sh, cpus, smt)
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


def test_smt_snapshot_restores(kvm, kiln, bzimage, initrd, tmp_path):
    """A snapshot of a VM with smt restores (its CPUID against this host's, shaped by the same
    configuration) and the guest still has its two threads per core."""
    sock, state, mem = tmp_path / "api.sock", tmp_path / "state", tmp_path / "mem"
    sh = boot(kiln, sock, bzimage, initrd, {"vcpu_count": 2, "mem_size_mib": 256, "smt": True})
    try:
        check_topology(sh, 2, True)
        snapshot(sock, state, mem)
    finally:
        sh.close()
    sock2 = tmp_path / "api2.sock"
    sh = start(kiln, sock2)
    try:
        load_snapshot(sock2, state, mem)
        assert call(sock2, "GET", "/machine-config")[1]["smt"] is True
        check_topology(sh, 2, True)
    finally:
        sh.close()


def test_cpu_templates_at_instance_start(kvm, kiln, bzimage, initrd, tmp_path):
    """Each static template is taken by PUT /machine-config and shown by GET; InstanceStart
    refuses it with Firecracker's message unless it fits this host (a failed InstanceStart
    leaves the API ready for the next try); the first that fits boots, and its guest sees the
    template's CPU signature. On QEMU's qemu64 (AuthenticAMD, not a Milan) every template is
    refused: the Intel ones for the vendor, T2A for the model."""
    vendor, signature = host_cpu()
    sock = tmp_path / "api.sock"
    sh = start(kiln, sock)
    try:
        configure(sock, bzimage, initrd, {"vcpu_count": 2, "mem_size_mib": 256})
        assert call(sock, "PUT", "/machine-config", {"vcpu_count": 3, "mem_size_mib": 256,
                                                     "smt": True}) == (
            400, {"fault_message": 'Machine config error: "machine-config": "vcpu_count": 3 '
                                   'with "smt": true: ' + VCPUS})
        booted = None
        for name, (template_vendor, models, shown) in TEMPLATES.items():
            assert call(sock, "PATCH", "/machine-config", {"cpu_template": name}) == (204, None)
            assert call(sock, "GET", "/machine-config")[1]["cpu_template"] == name
            expected = (WRONG_VENDOR if vendor != template_vendor else
                        None if (signature & 0x0fff0fff) in models else WRONG_MODEL)
            reply = call(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
            if expected:
                assert reply == (400, {"fault_message": expected}), (name, vendor, hex(signature))
                continue
            assert reply == (204, None), (name, reply)
            booted = (name, shown)
            break
        if booted is None:
            assert call(sock, "GET", "/")[1]["state"] == "Not started"
            return
        sh.wait_ready()
        family, model = family_model(booted[1])
        cpuinfo = sh.check("head -n 20 /proc/cpuinfo")
        assert re.search(rf"cpu family\s*:\s*{family}\b", cpuinfo), (booted, cpuinfo)
        assert re.search(rf"model\s*:\s*{model}\b", cpuinfo), (booted, cpuinfo)
        assert "avx512f" not in sh.check("grep -m1 ^flags /proc/cpuinfo")
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


# A custom template (Firecracker's PUT /cpu-config) that hides SSE3 (CPUID.1:ECX[0], "pni" in
# /proc/cpuinfo), which QEMU's qemu64 and every x86-64 host KVM offers.
PNI_OFF = {"kvm_capabilities": ["!56"],
           "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
               {"register": "ecx", "bitmap": "0b" + "x" * 31 + "0"}]}]}


def cpu_flags(sh):
    """The guest's CPU feature flags (/proc/cpuinfo's first "flags" line)."""
    line = next(l for l in sh.check("grep -m1 ^flags /proc/cpuinfo").splitlines()
                if l.startswith("flags"))
    return set(line.partition(":")[2].split())


@pytest.mark.parametrize("template", [None, "file"])
def test_custom_template_from_config_file(kvm, kiln, bzimage, initrd, tmp_path, template):
    """--config-file's "cpu-config" names a template file: the guest boots without SSE3 and
    the document holds the template itself (GET /vm/config); without it the guest has SSE3."""
    sock, config = tmp_path / "api.sock", tmp_path / "vm.json"
    doc = {"boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                           "boot_args": BOOT_ARGS},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}
    if template:
        (tmp_path / "pni_off.json").write_text(json.dumps(PNI_OFF))
        doc["cpu-config"] = str(tmp_path / "pni_off.json")
    config.write_text(json.dumps(doc))
    sh = Shell([kiln, "--api-sock", sock, "--config-file", config])
    try:
        wait_for_socket(sock, sh.proc)
        flags = cpu_flags(sh)
        assert "sse2" in flags, flags
        assert ("pni" in flags) is (template is None), flags
        assert call(sock, "GET", "/vm/config")[1]["cpu-config"] == (PNI_OFF if template else None)
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


def test_kiln_run_machine_options(kvm, kiln, bzimage, initrd, tmp_path):
    """The same fields from `kiln run`: --smt pairs the CPUs, --cpu-template FILE hides SSE3;
    a template file that is missing or not a template is exit 2 naming it."""
    (tmp_path / "pni_off.json").write_text(json.dumps(PNI_OFF))
    (tmp_path / "bad.json").write_text(json.dumps({"cpuid_modifiers": [{"leaf": "1"}]}))
    base = [kiln, "run", "--kernel", bzimage, "--initrd", initrd, "--memory", "256M"]
    for path, says in ((tmp_path / "none.json", "No such file"), (tmp_path / "bad.json", "leaf")):
        run = subprocess.run([*base, "--cpu-template", path], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 2 and f"--cpu-template {path}: " in run.stderr, run.stderr
        assert says in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    sh = Shell([*base, "--cpus", "2", "--smt", "--cpu-template", tmp_path / "pni_off.json"])
    try:
        flags = cpu_flags(sh)
        assert "sse2" in flags and "pni" not in flags, flags
        check_topology(sh, 2, True)
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()


def test_custom_template_through_the_api(kvm, kiln, bzimage, initrd, tmp_path):
    """PUT /cpu-config: a template naming a CPUID leaf KVM does not offer, or a KVM capability
    it lacks, is refused at InstanceStart (and the API stays ready); a good one replaces the
    static template set before it (T2, which this host's CPU would refuse), the guest boots
    without SSE3, and a snapshot restores with the template in its configuration."""
    sock, state, mem = tmp_path / "api.sock", tmp_path / "state", tmp_path / "mem"
    sh = start(kiln, sock)
    try:
        configure(sock, bzimage, initrd, {"vcpu_count": 2, "mem_size_mib": 256})
        assert call(sock, "PUT", "/cpu-config", {"foo": False}) == (400, {"fault_message": (
            "An error occurred when deserializing the json body of a request: unknown field "
            "`foo`, expected one of `kvm_capabilities`, `cpuid_modifiers`, `msr_modifiers`")})
        no_leaf = {"cpuid_modifiers": [{"leaf": "0x8fffffff", "subleaf": "0x0", "flags": 0,
                                        "modifiers": []}]}
        assert call(sock, "PUT", "/cpu-config", no_leaf) == (204, None)
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (400, {
            "fault_message": "Start microvm error: CPU template custom changes CPUID leaf "
                             "0x8fffffff subleaf 0x0, which this host's KVM does not offer"})
        assert call(sock, "PUT", "/cpu-config", {"kvm_capabilities": ["999999"]}) == (204, None)
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (400, {
            "fault_message": "Start microvm error: Missing KVM capabilities: 0xf423f (this "
                             "host's KVM_CHECK_EXTENSION 999999 is 0; see the CPU template's "
                             "kvm_capabilities)"})
        # The last template set wins: T2, then the custom one.
        assert call(sock, "PATCH", "/machine-config", {"cpu_template": "T2"}) == (204, None)
        assert call(sock, "PUT", "/cpu-config", PNI_OFF) == (204, None)
        assert "cpu_template" not in call(sock, "GET", "/machine-config")[1]
        assert call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == (204, None)
        sh.wait_ready()
        flags = cpu_flags(sh)
        assert "pni" not in flags and "sse2" in flags, flags
        assert call(sock, "GET", "/vm/config")[1]["cpu-config"] == PNI_OFF
        assert call(sock, "PUT", "/cpu-config", PNI_OFF) == (400, {"fault_message": (
            "The requested operation is not supported after starting the microVM.")})
        snapshot(sock, state, mem)
    finally:
        sh.close()
    sock2 = tmp_path / "api2.sock"
    sh = start(kiln, sock2)
    try:
        load_snapshot(sock2, state, mem)
        assert call(sock2, "GET", "/vm/config")[1]["cpu-config"] == PNI_OFF
        assert "pni" not in cpu_flags(sh)
        assert sh.poweroff() == 0, sh.err()
    finally:
        sh.close()
