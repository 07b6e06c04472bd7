# SPDX-License-Identifier: Apache-2.0
"""Firecracker v1.16.1's own API tests (tests/integration_tests/functional/test_api.py), ported
to kiln: the same requests, status codes and fault messages. Each case names the Firecracker
test function it comes from. Not ported: /pmem and /hotplug/memory (kiln refuses them by name:
test_pmem_api, test_pmem_rate_limiter_api, test_api_memory_hotplug), vhost-user drives, what
needs Firecracker's own build or jail
(test_api_happy_start's PVH log line, test_api_version's Cargo.toml comparison), and
test_api_machine_config's RLIMIT_AS start failure (a mem_size_mib of 2^64 - 1 is refused at
PATCH by kiln, which takes 64-bit signed integers). Where kiln differs on purpose the case says
so: serde's "missing field `x`" / "unknown field `x`" wording (kiln names the field its own
way), a multicast guest_mac (kiln refuses it), and a refused PUT that changes nothing (where
Firecracker drops the interface it failed to update).

The pre-boot cases need no KVM (each runs its own kiln with nothing started). The post-boot
cases share one guest (the module's `booted` fixture): it boots once, configured as
Firecracker's tests configure theirs, and the cases run against it in file order; Ctrl+Alt+Del
ends it, and its snapshot is restored in a second kiln last. Every refused PUT or PATCH is also
checked to change nothing: GET /vm/config is the same before and after."""
import json
import os
import re
import subprocess

import pytest

from conftest import Shell, in_ns
from fcapi import UnixHTTPConnection, call, wait_for_socket

BOOT_ARGS = ("console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp "
             "i8042.dumbkbd kiln.test=")
NOT_SUPPORTED_BEFORE_START = "The requested operation is not supported before starting the microVM."
NOT_SUPPORTED_AFTER_START = "The requested operation is not supported after starting the microVM"
TAPS = ("fctap1", "fctap2", "fctap3")


def ext4(path, size="8M"):
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(path), size], check=True)
    return str(path)


class Api:
    """A kiln --api-sock and Firecracker's test client's calls: ok() for a request that must
    succeed, refused() for one that must fail (a 400 whose fault_message matches, the
    configuration unchanged)."""

    def __init__(self, sock, proc):
        self.sock, self.proc = sock, proc

    def call(self, method, path, body=None):
        return call(self.sock, method, path, body)

    def ok(self, method, path, body=None):
        status, reply = self.call(method, path, body)
        assert status in (200, 204), (method, path, body, status, reply)
        return reply

    def config(self):
        return self.ok("GET", "/vm/config")

    def deprecation(self, method, path, body):
        """The status of a request and its Deprecation header (None when absent)."""
        conn = UnixHTTPConnection(self.sock, 60)
        try:
            conn.request(method, path, body=json.dumps(body))
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("Deprecation")
        finally:
            conn.close()

    def refused(self, method, path, body=None, match=None, status=400):
        before = self.config()
        got, reply = self.call(method, path, body)
        assert got == status, (method, path, body, got, reply)
        message = reply["fault_message"]
        if match is not None:
            assert re.search(match, message), (method, path, body, message)
        assert self.config() == before, (method, path, body)
        return message



@pytest.fixture
def api(kiln, tmp_path, request):
    """A kiln serving the API, nothing started; in the module's tap namespace when the test
    asks for `taps` (then the taps of TAPS exist there)."""
    ns = request.getfixturevalue("taps") if "taps" in request.fixturenames else None
    extra = getattr(request, "param", ())
    sock = tmp_path / "api.sock"
    argv = [str(kiln), "--api-sock", str(sock), *extra]
    proc = subprocess.Popen(argv if ns is None else in_ns(ns, *argv), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        yield Api(sock, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)


def make_ns(name):
    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    for tap in TAPS:
        ip("-n", name, "tuntap", "add", "dev", tap, "mode", "tap")
        ip("-n", name, "link", "set", tap, "up")
    ip("-n", name, "addr", "add", "10.9.0.1/24", "dev", TAPS[0])
    return name


@pytest.fixture(scope="module")
def taps():
    ns = make_ns(f"kiln-fcport-{os.getpid()}")
    yield ns
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ---------------------------------------------------------------------------------------------
# Before boot: no KVM needed.

def test_api_put_update_pre_boot(api, bzimage, tmp_path):
    """test_api_put_update_pre_boot: PUT updates of drives, boot source and machine config."""
    rootfs, scratch, other = (ext4(tmp_path / n) for n in ("rootfs.ext4", "scratch.ext4", "other.ext4"))
    api.ok("PUT", "/boot-source", {"kernel_image_path": str(bzimage)})
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    api.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": rootfs,
                                     "is_root_device": True, "is_read_only": False})
    api.ok("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": scratch,
                                      "is_root_device": False, "is_read_only": False})
    api.refused("PUT", "/boot-source", {"kernel_image_path": "foo.bar"},
                re.escape("The kernel file cannot be opened: No such file or directory (os error 2)"))
    api.ok("PUT", "/boot-source", {"kernel_image_path": str(bzimage)})
    api.refused("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "foo.bar",
                                          "is_read_only": True, "is_root_device": True},
                "No such file or directory")
    api.refused("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": scratch,
                                           "is_read_only": False, "is_root_device": True},
                "A root block device already exists")
    api.ok("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": other,
                                      "is_read_only": True, "is_root_device": False})
    config = {"vcpu_count": 4, "smt": True, "mem_size_mib": 256, "track_dirty_pages": True,
              "cpu_template": "C3"}
    api.ok("PUT", "/machine-config", config)
    assert api.ok("GET", "/machine-config") == {**config, "huge_pages": "None"}


def test_net_api_put_update_pre_boot(taps, api):
    """test_net_api_put_update_pre_boot: network interfaces' MACs and taps must be unique."""
    api.ok("PUT", "/network-interfaces/1", {"iface_id": "1", "guest_mac": "06:00:00:00:00:01",
                                            "host_dev_name": TAPS[0]})
    # Firecracker's 07:00:00:00:00:01 is a multicast address, which kiln refuses.
    api.ok("PUT", "/network-interfaces/2", {"iface_id": "2", "guest_mac": "0a:00:00:00:00:01",
                                            "host_dev_name": TAPS[1]})
    api.refused("PUT", "/network-interfaces/2", {"iface_id": "2", "host_dev_name": TAPS[1],
                                                 "guest_mac": "06:00:00:00:00:01"},
                "The MAC address is already in use: 06:00:00:00:00:01")
    api.ok("PUT", "/network-interfaces/2", {"iface_id": "2", "host_dev_name": TAPS[1],
                                            "guest_mac": "08:00:00:00:00:01"})
    api.refused("PUT", "/network-interfaces/1", {"iface_id": "1", "host_dev_name": TAPS[1],
                                                 "guest_mac": "06:00:00:00:00:01"},
                "Could not create the network device")
    # Firecracker drops interface "1" with the refused update above, so its MAC is free again;
    # in kiln a refused request changes nothing, and "1" keeps it.
    api.refused("PUT", "/network-interfaces/3", {"iface_id": "3", "host_dev_name": TAPS[2],
                                                 "guest_mac": "06:00:00:00:00:01"},
                "The MAC address is already in use: 06:00:00:00:00:01")
    api.ok("PUT", "/network-interfaces/3", {"iface_id": "3", "host_dev_name": TAPS[2],
                                            "guest_mac": "06:00:00:00:00:03"})
    assert [n["iface_id"] for n in api.config()["network-interfaces"]] == ["1", "2", "3"]


def test_api_mmds_config(taps, api):
    """test_api_mmds_config: /mmds/config before and after a network interface exists."""
    api.refused("PUT", "/mmds/config", {"network_interfaces": []},
                "The list of network interface IDs that allow forwarding MMDS requests is empty.")
    missing = ("The list of network interface IDs provided contains at least one ID that does "
               "not correspond to any existing network interface.")
    api.refused("PUT", "/mmds/config", {"network_interfaces": ["foo"]}, missing)
    api.ok("PUT", "/network-interfaces/1", {"iface_id": "1", "guest_mac": "06:00:00:00:00:01",
                                            "host_dev_name": TAPS[0]})
    api.refused("PUT", "/mmds/config", {"network_interfaces": ["1", "foo"]}, missing)
    api.refused("PUT", "/mmds/config", {"version": "foo", "network_interfaces": ["1"]},
                "An error occurred when deserializing the json body of a request: unknown "
                "variant `foo`, expected `V1` or `V2`")
    api.ok("PUT", "/mmds/config", {"network_interfaces": ["1"]})
    assert api.config()["mmds-config"]["version"] == "V1"
    api.ok("PUT", "/mmds/config", {"ipv4_address": "169.254.169.250", "network_interfaces": ["1"]})
    assert api.config()["mmds-config"]["ipv4_address"] == "169.254.169.250"
    api.ok("PUT", "/mmds/config", {"version": "V2", "ipv4_address": "169.254.169.250",
                                   "network_interfaces": ["1"]})
    assert api.config()["mmds-config"]["version"] == "V2"


def test_api_machine_config(api):
    """test_api_machine_config, before boot (its InstanceStart part: test_machine_config_booted;
    its RLIMIT_AS part is not ported)."""
    api.refused("PUT", "/machine-config", {"vcpu_count": "-2"})
    api.refused("PUT", "/machine-config", {"smt": "random_string"})
    api.refused("PUT", "/machine-config", {"cpu_template": "random_string"})
    api.ok("PATCH", "/machine-config", {"track_dirty_pages": True})
    # Firecracker's serde says "missing field `vcpu_count` at line 1 column 21.", kiln names
    # the field its own way.
    api.refused("PUT", "/machine-config", {"mem_size_mib": 128}, "vcpu_count")
    api.refused("PUT", "/machine-config", {"vcpu_count": 2}, "mem_size_mib")
    api.ok("PUT", "/machine-config", {"mem_size_mib": 128, "vcpu_count": 1})
    assert api.ok("GET", "/machine-config")["smt"] is False
    api.ok("PATCH", "/machine-config", {"smt": True})
    api.refused("PUT", "/machine-config", {"mem_size_mib": "-2"})
    api.refused("PUT", "/machine-config", '{"mem_size_mib": %d}' % (1 << 64),
                "error occurred when deserializing the json body of a request: invalid type")
    api.refused("PATCH", "/machine-config", {"mem_size_mib": 0}, re.escape(
        "The memory size (MiB) is either 0, or not a multiple of the configured page size."))
    api.ok("PATCH", "/machine-config", {"mem_size_mib": 256})


def test_api_cpu_config(api):
    """test_api_cpu_config: a body that is no CPU template is refused; a template is taken."""
    api.refused("PUT", "/cpu-config", {"foo": False})
    api.ok("PUT", "/cpu-config", {
        "kvm_capabilities": [],
        "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
            {"register": "ecx", "bitmap": "0bxxxx_xxx0"}]}],
        "msr_modifiers": []})


def test_rate_limiters_api_config(taps, api, tmp_path):
    """test_rate_limiters_api_config: drives, interfaces and the entropy device with limiters
    (its /pmem part is not ported)."""
    bw = {"bandwidth": {"size": 1000000, "refill_time": 100}}
    ops = {"ops": {"size": 1, "refill_time": 100}}
    for name, limiter in [("bw", bw), ("ops", ops), ("bwops", {**bw, **ops}), ("nada", {})]:
        api.ok("PUT", f"/drives/{name}", {"drive_id": name, "is_read_only": False,
                                          "path_on_host": ext4(tmp_path / f"{name}.ext4"),
                                          "is_root_device": False, "rate_limiter": limiter})
    api.ok("PUT", "/network-interfaces/1", {"iface_id": "1", "guest_mac": "06:00:00:00:00:01",
                                            "host_dev_name": TAPS[0], "tx_rate_limiter": bw})
    api.ok("PUT", "/network-interfaces/2", {"iface_id": "2", "guest_mac": "06:00:00:00:00:02",
                                            "host_dev_name": TAPS[1], "rx_rate_limiter": bw})
    api.ok("PUT", "/network-interfaces/3", {"iface_id": "3", "guest_mac": "06:00:00:00:00:03",
                                            "host_dev_name": TAPS[2], "rx_rate_limiter": {**bw, **ops},
                                            "tx_rate_limiter": {**bw, **ops}})
    api.ok("PUT", "/entropy", {"rate_limiter": {**bw, **ops}})


def test_api_patch_pre_boot(taps, api, bzimage, tmp_path):
    """test_api_patch_pre_boot: which PATCH requests a VM not started takes (its /pmem part is
    not ported)."""
    api.ok("PUT", "/boot-source", {"kernel_image_path": str(bzimage)})
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    api.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": ext4(tmp_path / "r.ext4"),
                                     "is_root_device": True, "is_read_only": False})
    api.ok("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": ext4(tmp_path / "s.ext4"),
                                      "is_root_device": False, "is_read_only": False})
    api.ok("PUT", "/network-interfaces/1", {"iface_id": "1", "host_dev_name": TAPS[0],
                                            "guest_mac": "06:00:00:00:00:01"})
    api.refused("PATCH", "/boot-source", {"kernel_image_path": "otherfile"}, "Invalid request method")
    api.ok("PATCH", "/machine-config", {"vcpu_count": 4})
    assert api.ok("GET", "/machine-config")["vcpu_count"] == 4
    api.refused("PATCH", "/logger", {"level": "Error"}, "Invalid request method")
    api.refused("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": "foo.bar"},
                NOT_SUPPORTED_BEFORE_START)
    api.refused("PATCH", "/network-interfaces/1", {"iface_id": "1"}, NOT_SUPPORTED_BEFORE_START)


def test_api_balloon_pre_boot(api):
    """test_api_balloon, before boot (after boot: test_api_balloon_booted)."""
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    api.refused("PATCH", "/balloon", {"amount_mib": 0})
    api.ok("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": True})
    api.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 5})
    reply = api.ok("GET", "/balloon")
    assert (reply["amount_mib"], reply["deflate_on_oom"], reply["stats_polling_interval_s"]) == (0, False, 5)
    api.refused("PATCH", "/balloon", {"amount_mib": 2})
    api.refused("PUT", "/balloon", {"amount_mib": 1024, "deflate_on_oom": False,
                                    "stats_polling_interval_s": 5})


def test_api_vsock_pre_boot(api, tmp_path):
    """test_api_vsock, before boot (after boot: test_api_vsock_and_entropy_booted)."""
    uds = str(tmp_path / "vsock.sock")
    assert api.deprecation("PUT", "/vsock", {"guest_cid": 15, "uds_path": uds}) == (204, None)
    api.ok("PUT", "/vsock", {"guest_cid": 166, "uds_path": uds})
    for cid in (15, 166):
        assert api.deprecation("PUT", "/vsock", {"vsock_id": "vsock1", "guest_cid": cid,
                                                 "uds_path": uds}) == (204, "true")


def test_negative_machine_config_api(api):
    """test_negative_machine_config_api: cpu_template (even "None") is deprecated, in a PUT
    and a PATCH; without it there is no header."""
    assert api.deprecation("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256,
                                                      "cpu_template": "None"}) == (204, "true")
    assert api.deprecation("PATCH", "/machine-config", {"cpu_template": "None"}) == (204, "true")
    assert api.deprecation("PUT", "/machine-config", {"vcpu_count": 2,
                                                      "mem_size_mib": 256}) == (204, None)


def test_api_entropy_pre_boot(api):
    """test_api_entropy, before boot (after boot: test_api_vsock_and_entropy_booted)."""
    api.ok("PUT", "/entropy", {})
    api.ok("PUT", "/entropy", {})


@pytest.mark.parametrize("api", [("--http-api-max-payload-size", str(2 << 20))], indirect=True)
def test_map_private_seccomp_regression(api):
    """test_map_private_seccomp_regression: a 1 MiB MMDS body with a 2 MiB payload limit."""
    assert api.ok("GET", "/mmds") == {}
    api.ok("PUT", "/mmds", {"latest": {"meta-data": {"ami-id": "b" * (1 << 20)}}})


def test_negative_snapshot_load_api(api):
    """test_negative_snapshot_load_api."""
    api.refused("PUT", "/snapshot/load", {"snapshot_path": "foo", "mem_file_path": "bar",
                                          "mem_backend": {"backend_type": "File", "backend_path": "bar"}},
                "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.")
    # Firecracker's serde says "missing field `backend_type`", kiln names the field its own way.
    api.refused("PUT", "/snapshot/load", {"snapshot_path": "foo", "mem_backend": {"backend_path": "bar"}},
                "backend_type")
    api.refused("PUT", "/snapshot/load", {"snapshot_path": "foo", "mem_backend": {"backend_type": "File"}},
                "backend_path")
    api.refused("PUT", "/snapshot/load", {"snapshot_path": "foo",
                                          "mem_backend": {"backend_type": "foo", "backend_path": "bar"}},
                "unknown variant `foo`, expected `File` or `Uffd`")
    api.refused("PUT", "/snapshot/load", {"mem_backend": {"backend_type": "File", "backend_path": "bar"}},
                "snapshot_path")
    api.refused("PUT", "/snapshot/load", {"snapshot_path": "foo"},
                "missing field: either `mem_backend` or `mem_file_path` is required")
    # Deprecated mem_file_path: the header, also on the failure (no such files; Firecracker
    # then exits, kiln keeps serving).
    assert api.deprecation("PUT", "/snapshot/load", {"snapshot_path": "foo",
                                                     "mem_file_path": "bar"}) == (400, "true")


# ---------------------------------------------------------------------------------------------
# After boot: one guest for all (scripts/kvm-box on hosts without KVM).

TX_RL = {"bandwidth": {"size": 1000000, "refill_time": 100, "one_time_burst": None}, "ops": None}


@pytest.fixture(scope="module")
def booted(kiln, bzimage, initrd, taps, tmp_path_factory):
    """One guest configured as Firecracker's tests configure theirs (basic_config: 2 vCPUs,
    256 MiB, a read-only root drive; a scratch drive; a network interface; a balloon; vsock;
    MMDS), its configuration before InstanceStart kept as .preboot."""
    tmp = tmp_path_factory.mktemp("booted")
    sock = tmp / "api.sock"
    sh = Shell(in_ns(taps, kiln, "--api-sock", sock), ready=False)
    api = Api(sock, sh.proc)
    try:
        wait_for_socket(sock, sh.proc)
        api.tmp = tmp
        api.rootfs = ext4(tmp / "rootfs.ext4")
        api.scratch = ext4(tmp / "scratch.ext4")
        api.uds = str(tmp / "vsock.sock")
        api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
        api.ok("PATCH", "/machine-config", {"mem_size_mib": 256, "cpu_template": "None"})
        api.ok("PUT", "/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                                       "boot_args": BOOT_ARGS})
        api.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": api.rootfs,
                                         "is_root_device": True, "is_read_only": True,
                                         "io_engine": "Sync"})
        api.ok("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": api.scratch,
                                          "is_root_device": False, "is_read_only": False,
                                          "io_engine": "Async"})
        api.ok("PUT", "/network-interfaces/1", {"iface_id": "1", "guest_mac": "06:00:00:00:00:01",
                                                "host_dev_name": TAPS[0], "tx_rate_limiter": TX_RL})
        api.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                                   "stats_polling_interval_s": 5})
        api.ok("PUT", "/vsock", {"guest_cid": 15, "uds_path": api.uds})
        api.ok("PUT", "/mmds/config", {"version": "V2", "ipv4_address": "169.254.169.250",
                                       "network_interfaces": ["1"], "imds_compat": True})
        api.preboot = api.config()
        api.preboot_version = api.ok("GET", "/version")
        api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        sh.wait_ready()
        api.shell = sh
        yield api
    finally:
        sh.close()


def test_get_full_config(booted, bzimage, initrd):
    """test_get_full_config: every resource as GET /vm/config reports it, the same before and
    after boot (without /pmem and /hotplug/memory)."""
    expected = {
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": False,
                           "track_dirty_pages": False, "huge_pages": "None"},
        "cpu-config": None,
        "boot-source": {"boot_args": BOOT_ARGS, "kernel_image_path": str(bzimage),
                        "initrd_path": str(initrd)},
        "drives": [
            {"drive_id": "rootfs", "partuuid": None, "is_root_device": True, "cache_type": "Unsafe",
             "is_read_only": True, "path_on_host": booted.rootfs, "rate_limiter": None,
             "io_engine": "Sync", "socket": None},
            {"drive_id": "scratch", "partuuid": None, "is_root_device": False, "cache_type": "Unsafe",
             "is_read_only": False, "path_on_host": booted.scratch, "rate_limiter": None,
             "io_engine": "Async", "socket": None}],
        "pmem": [],
        "balloon": {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 5,
                    "free_page_reporting": False, "free_page_hinting": False},
        "vsock": {"guest_cid": 15, "uds_path": booted.uds},
        "memory-hotplug": None,
        "network-interfaces": [{"iface_id": "1", "host_dev_name": TAPS[0],
                                "guest_mac": "06:00:00:00:00:01", "mtu": None,
                                "rx_rate_limiter": None, "tx_rate_limiter": TX_RL}],
        "logger": None,
        "metrics": None,
        "mmds-config": {"version": "V2", "ipv4_address": "169.254.169.250",
                        "network_interfaces": ["1"], "imds_compat": True},
        "entropy": None,
    }
    assert booted.preboot == expected
    assert booted.config() == expected


def test_api_version(booted):
    """test_api_version: the same version before and after boot (kiln's own version: the
    Cargo.toml comparison is not ported)."""
    assert "firecracker_version" in booted.preboot_version
    assert booted.ok("GET", "/version") == booted.preboot_version
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", booted.preboot_version["firecracker_version"])


def test_drive_io_engine(booted):
    """test_drive_io_engine: each drive's io_engine as set, after boot."""
    assert [d["io_engine"] for d in booted.config()["drives"]] == ["Sync", "Async"]


def test_machine_config_booted(booted):
    """test_api_machine_config, its end: the machine configuration after boot."""
    mc = booted.config()["machine-config"]
    assert (mc["vcpu_count"], mc["mem_size_mib"], mc["smt"]) == (2, 256, False)
    assert booted.ok("GET", "/")["state"] == "Running"


def test_api_put_update_post_boot(booted, bzimage):
    """test_api_put_update_post_boot: PUT updates are refused after boot."""
    booted.refused("PUT", "/boot-source", {"kernel_image_path": str(bzimage)}, NOT_SUPPORTED_AFTER_START)
    booted.refused("PATCH", "/machine-config", {"vcpu_count": 4}, NOT_SUPPORTED_AFTER_START)
    booted.refused("PUT", "/machine-config", {"vcpu_count": 4, "mem_size_mib": 128},
                   NOT_SUPPORTED_AFTER_START)
    booted.refused("PUT", "/mmds/config", {"version": "V2", "ipv4_address": "169.254.169.250",
                                           "network_interfaces": ["1"]}, NOT_SUPPORTED_AFTER_START)


def test_negative_api_patch_post_boot(booted):
    """test_negative_api_patch_post_boot: PATCH requests refused after boot."""
    booted.refused("PATCH", "/boot-source", {"kernel_image_path": "otherfile"}, "Invalid request method")
    booted.refused("PATCH", "/machine-config", {"vcpu_count": 4}, NOT_SUPPORTED_AFTER_START)
    booted.refused("PATCH", "/logger", {"level": "Error"}, "Invalid request method")


def test_api_vsock_and_entropy_booted(booted):
    """test_api_vsock and test_api_entropy, after boot: no new vsock or entropy device."""
    booted.refused("PUT", "/vsock", {"guest_cid": 17, "uds_path": booted.uds})
    booted.refused("PUT", "/entropy", {})


def test_drive_patch(booted):
    """test_drive_patch (_drive_patch), less its vhost-user drive: PATCH /drives after boot."""
    booted.refused("PATCH", "/drives/scratch", {"drive_id": "scratch"},
                   re.escape("Running method expected different backend."))
    drive_path = "foo.bar"
    # Firecracker's serde quotes the field `so`, kiln "so".
    for key, value in [("is_read_only", True), ("io_engine", "Sync"), ("is_root_device", False)]:
        booted.refused("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": drive_path,
                                                    key: value}, f"unknown field .{key}.")
    booted.refused("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": drive_path},
                   re.escape("Error manipulating the backing file: No such file or directory "
                             f"(os error 2) {drive_path}"))
    new = ext4(booted.tmp / "scratch_new.ext4")
    booted.ok("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": new})
    booted.ok("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": new, "rate_limiter": {
        "bandwidth": {"size": 1000000, "refill_time": 100}, "ops": {"size": 1, "refill_time": 100}}})
    booted.ok("PATCH", "/drives/scratch", {"drive_id": "scratch", "rate_limiter": {
        "bandwidth": {"size": 5000, "refill_time": 100}, "ops": {"size": 500, "refill_time": 100}}})
    booted.refused("PATCH", "/drives/scratch", {"drive_id": "scratch", "path_on_host": "foo.bar", "rate_limiter": {
        "bandwidth": {"size": 5000, "refill_time": 100}, "ops": {"size": 500, "refill_time": 100}}},
        "No such file or directory")
    drives = booted.config()["drives"]
    assert drives[1] == {
        "drive_id": "scratch", "partuuid": None, "is_root_device": False, "cache_type": "Unsafe",
        "is_read_only": False, "path_on_host": new,
        "rate_limiter": {"bandwidth": {"size": 5000, "one_time_burst": None, "refill_time": 100},
                         "ops": {"size": 500, "one_time_burst": None, "refill_time": 100}},
        "io_engine": "Async", "socket": None}, drives


def test_api_balloon_booted(booted):
    """test_api_balloon, after boot."""
    booted.ok("PATCH", "/balloon", {"amount_mib": 4})
    booted.refused("PATCH", "/balloon", {"amount_mib": 300})
    booted.ok("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 5})
    reply = booted.ok("GET", "/balloon")
    assert (reply["amount_mib"], reply["deflate_on_oom"], reply["stats_polling_interval_s"]) == (4, False, 5)
    booted.refused("PATCH", "/balloon", {"amount_mib": 33554432})


def test_get_full_config_after_restoring_snapshot_take(booted):
    """test_get_full_config_after_restoring_snapshot, its first half: a new tx_rate_limiter
    after boot, then a Full snapshot of the shared guest (restored after it ends, in
    test_get_full_config_after_restoring_snapshot)."""
    tx_rl = {"bandwidth": {"size": 2000000, "refill_time": 100, "one_time_burst": None}, "ops": None}
    booted.ok("PATCH", "/network-interfaces/1", {"iface_id": "1", "tx_rate_limiter": tx_rl})
    assert booted.config()["network-interfaces"][0]["tx_rate_limiter"] == tx_rl
    booted.ok("PATCH", "/vm", {"state": "Paused"})
    booted.snapshot = (str(booted.tmp / "vm.snap"), str(booted.tmp / "vm.mem"), booted.config())
    booted.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": booted.snapshot[0],
                                          "mem_file_path": booted.snapshot[1]})
    booted.ok("PATCH", "/vm", {"state": "Resumed"})


def test_send_ctrl_alt_del(booted):
    """test_send_ctrl_alt_del: the guest restarts on Ctrl+Alt+Del and kiln exits (the last
    case: it ends the shared guest)."""
    booted.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert booted.shell.proc.wait(timeout=120) == 3, booted.shell.err()


def test_get_full_config_after_restoring_snapshot(booted, kiln, taps):
    """test_get_full_config_after_restoring_snapshot: a new kiln restored from the snapshot of
    the shared guest (which has ended: its tap is free) reports the configuration it had."""
    snap, mem, expected = booted.snapshot
    if os.path.exists(booted.uds):
        os.unlink(booted.uds)
    sock = booted.tmp / "restored.sock"
    proc = subprocess.Popen(in_ns(taps, kiln, "--api-sock", sock), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        restored = Api(sock, proc)
        restored.ok("PUT", "/snapshot/load", {"snapshot_path": snap, "resume_vm": False,
                                              "mem_backend": {"backend_type": "File", "backend_path": mem}})
        assert restored.config() == expected
    finally:
        proc.terminate()
        proc.wait(timeout=60)
