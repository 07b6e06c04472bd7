# SPDX-License-Identifier: Apache-2.0
"""Firecracker's REST API (`kiln --api-sock PATH`): Firecracker's getting-started flow with curl
against a real guest, pause, resume and Ctrl+Alt+Del, the pre-boot / post-boot rules, a table
of bad requests (nothing changes), a configuration file with the API and metrics, and a flood
of clients."""
import json
import re
import socket
import subprocess
import threading
import time

from conftest import Shell, in_ns
from fcapi import call, wait_for_socket

# Firecracker's getting-started arguments, with the i8042 options of its default command line
# (the guest's keyboard driver then binds, so SendCtrlAltDel reaches it) and the test shell.
# quiet: a kernel message (e.g. IPv6 "link becomes ready") must not land inside a reply the
# guest prints, as it once did after the MMDS body.
BOOT_ARGS = "quiet console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd kiln.test="
POST_BOOT = "The requested operation is not supported after starting the microVM."
PRE_BOOT = "The requested operation is not supported before starting the microVM."


def curl(sock, method, path, data):
    """As Firecracker's getting-started guide does it: curl -X PUT --unix-socket ... --data."""
    proc = subprocess.run(["curl", "-sS", "-X", method, "--unix-socket", str(sock), "--data",
                           json.dumps(data), "-w", "%{http_code}", f"http://localhost{path}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def ext4(path, size="64M"):
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(path), size], check=True)
    return path


def test_getting_started_with_curl_pause_resume_ctrl_alt_del(kvm, kiln, bzimage, initrd, netns, tmp_path):
    sock = tmp_path / "firecracker.socket"
    log = tmp_path / "firecracker.log"
    log.write_text("")
    rootfs = ext4(tmp_path / "rootfs.ext4")
    sh = Shell(in_ns(netns, kiln, "--api-sock", sock, "--id", "getting-started", "--boot-timer"),
               ready=False)
    try:
        wait_for_socket(sock, sh.proc)
        assert call(sock, "GET", "/") == (200, {"id": "getting-started", "state": "Not started",
                                                "vmm_version": call(sock, "GET", "/version")[1]["firecracker_version"],
                                                "app_name": "kiln"})
        assert curl(sock, "PUT", "/logger", {"log_path": str(log), "level": "Info"}) == "204"
        assert curl(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}) == "204"
        assert curl(sock, "PUT", "/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                                                  "boot_args": BOOT_ARGS}) == "204"
        assert curl(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(rootfs),
                                                    "is_root_device": True, "is_read_only": False}) == "204"
        assert curl(sock, "PUT", "/network-interfaces/net1", {"iface_id": "net1", "guest_mac": "06:00:AC:10:00:02",
                                                              "host_dev_name": "ktap0"}) == "204"
        # Post-boot requests before boot change nothing.
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (400, {"fault_message": PRE_BOOT})
        assert curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"}) == "204"
        sh.wait_ready()

        status, info = call(sock, "GET", "/")
        assert status == 200 and info["state"] == "Running", info
        assert "06:00:ac:10:00:02" in sh.check("cat /sys/class/net/eth0/address")
        assert sh.check("cat /sys/block/vda/serial").strip() == "rootfs"
        assert "root=/dev/vda rw" in sh.check("cat /proc/cmdline")
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && ping -c 2 -W 5 10.9.0.1", timeout=60)

        # Paused: the vCPUs stay out of the guest, so a typed command has no answer until resumed.
        assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (204, None)
        assert call(sock, "GET", "/")[1]["state"] == "Paused"
        seen = len(sh.out)
        sh.proc.stdin.write(b"echo RESUMED-$((6 * 7))\n")
        sh.proc.stdin.flush()
        time.sleep(3)
        sh._read_until(lambda: True, 1, "")
        assert b"RESUMED-42" not in sh.out[seen:], sh.out[seen:]
        assert call(sock, "PATCH", "/vm", {"state": "Resumed"}) == (204, None)
        sh._wait_for(b"RESUMED-42", 60, seen)
        assert call(sock, "GET", "/")[1]["state"] == "Running"

        # Pre-boot requests after boot: refused, nothing changed.
        config = call(sock, "GET", "/vm/config")
        for method, path, body in [("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 512}),
                                   ("PATCH", "/machine-config", {"vcpu_count": 2}),
                                   ("PUT", "/boot-source", {"kernel_image_path": str(bzimage)}),
                                   ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(rootfs),
                                                              "is_root_device": True}),
                                   ("PUT", "/network-interfaces/net2", {"iface_id": "net2", "host_dev_name": "t"}),
                                   ("PUT", "/logger", {"level": "Debug"}),
                                   ("PUT", "/entropy", {}),
                                   ("PUT", "/actions", {"action_type": "InstanceStart"})]:
            assert call(sock, method, path, body) == (400, {"fault_message": POST_BOOT}), (method, path)
        assert call(sock, "GET", "/vm/config") == config
        assert config[1]["machine-config"]["mem_size_mib"] == 256
        assert config[1]["drives"][0]["drive_id"] == "rootfs"

        # Ctrl+Alt+Del on the guest's keyboard: Linux restarts (reboot=k), and kiln exits 3.
        assert call(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}) == (204, None)
        assert sh.proc.wait(timeout=120) == 3, sh.err()
        assert not sock.exists()  # kiln removes its socket
        text = log.read_text()
        assert "InstanceStart" in text, text
        # --boot-timer: the guest's write of 123, timed from kiln's start and from InstanceStart.
        assert re.search(r"guest boot time: \d+ us wall, \d+ us cpu since kiln started; \d+ us wall, "
                         r"\d+ us cpu since the VM was made \(InstanceStart\)", text), text
    finally:
        sh.close()


def test_config_file_with_api_metrics_and_drive_swap(kvm, kiln, bzimage, initrd, tmp_path):
    """--config-file with --api-sock: the VM boots at once and the API serves it; metrics from
    the file's "metrics" go out at boot and on FlushMetrics, with the drive's counters; the
    drive's backing file is swapped after boot."""
    sock = tmp_path / "api.sock"
    metrics = tmp_path / "metrics.json"
    metrics.write_text("")  # as Firecracker: an existing file or named pipe
    data = ext4(tmp_path / "data.ext4", "16M")
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd), "boot_args": BOOT_ARGS},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 192},
        "drives": [{"drive_id": "data", "path_on_host": str(data), "is_root_device": False}],
        "metrics": {"metrics_path": str(metrics)}}))
    sh = Shell([kiln, "--api-sock", sock, "--config-file", config])
    try:
        wait_for_socket(sock, sh.proc)
        assert call(sock, "GET", "/")[1]["state"] == "Running"
        status, cfg = call(sock, "GET", "/vm/config")
        assert status == 200 and cfg["machine-config"]["mem_size_mib"] == 192, cfg
        assert cfg["boot-source"]["kernel_image_path"] == str(bzimage), cfg
        lines = metrics.read_text().splitlines()
        assert len(lines) == 1, lines  # written when the VM started
        sh.check("dd if=/dev/vda of=/dev/null bs=1M count=4 iflag=direct")
        sh.check("dd if=/dev/zero of=/dev/vda bs=64k count=2 oflag=direct")
        assert call(sock, "PUT", "/metrics", {"metrics_path": str(metrics)}) == (
            400, {"fault_message": POST_BOOT})
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        lines = metrics.read_text().splitlines()
        assert len(lines) == 2, lines
        line = json.loads(lines[1])
        assert line["block_data"]["read_bytes"] >= 4 << 20, line
        assert line["block_data"]["write_bytes"] == 2 * 65536 and line["block_data"]["write_count"] >= 1, line
        assert line["block"]["read_bytes"] == line["block_data"]["read_bytes"], line
        assert line["get_api_requests"]["instance_info_count"] == 1, line
        assert line["get_api_requests"]["vm_config_count"] == 1, line
        assert line["put_api_requests"]["metrics_fails"] == 1, line
        assert line["utc_timestamp_ms"] > 1.7e12, line
        # The next line counts only what happened since: nothing.
        assert call(sock, "PUT", "/actions", {"action_type": "FlushMetrics"}) == (204, None)
        line = json.loads(metrics.read_text().splitlines()[2])
        assert line["block_data"]["read_bytes"] == 0 and line["put_api_requests"]["actions_count"] == 1, line

        # PATCH /drives after boot: a new backing file of another size; the guest sees both.
        swapped = tmp_path / "swapped.img"
        swapped.write_bytes(b"KILN-SWAPPED" + bytes((32 << 20) - 12))
        assert call(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": "/no/such"})[0] == 400
        assert call(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(swapped)}) == (204, None)
        sh.check("for i in 1 2 3 4 5 6 7 8 9 10; do [ $(cat /sys/block/vda/size) = 65536 ] && break; "
                 "sleep 0.5; done; [ $(cat /sys/block/vda/size) = 65536 ]")
        assert "KILN-SWAPPED" in sh.check("dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 12")
        assert call(sock, "GET", "/vm/config")[1]["drives"][0]["path_on_host"] == str(swapped)
        assert call(sock, "PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"})[0] == 400  # no such NIC
        assert sh.poweroff() == 0
    finally:
        sh.close()


def mmds_request(sh, method, path, *headers):
    """One HTTP/1.0 request from the guest to MMDS (busybox nc); returns the whole response,
    line ends as "\\n"."""
    head = "".join(f"{h}\\r\\n" for h in headers)
    return sh.check(f"printf '{method} {path} HTTP/1.0\\r\\n{head}\\r\\n' | nc 169.254.169.254 80",
                    timeout=60).replace("\r", "")


META = {"latest": {"meta-data": {"ami-id": "ami-87654321", "reservation-id": "r-79054aef",
                                 "network": {"mac": "06:00:ac:10:00:02"}}}}


def test_mmds_v2_and_v1_from_the_guest(kvm, kiln, bzimage, initrd, netns, tmp_path):
    """MMDS through the guest's network interface: ARP and TCP to 169.254.169.254 answered by
    kiln (never the tap), V2 session tokens, IMDS and JSON forms, data changed after boot; then
    V1 from a configuration file."""
    sock = tmp_path / "api.sock"
    sh = Shell(in_ns(netns, kiln, "--api-sock", sock), ready=False)
    try:
        wait_for_socket(sock, sh.proc)
        for method, path, body in [
                ("PUT", "/boot-source", {"kernel_image_path": str(bzimage), "initrd_path": str(initrd),
                                         "boot_args": BOOT_ARGS}),
                ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "ktap0",
                                                     "guest_mac": "06:00:AC:10:00:02"}),
                ("PUT", "/mmds/config", {"network_interfaces": ["eth0"], "version": "V2"}),
                ("PUT", "/mmds", META),
                ("PUT", "/actions", {"action_type": "InstanceStart"})]:
            assert call(sock, method, path, body) == (204, None), (method, path)
        sh.wait_ready()
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && "
                 "ip route add 169.254.169.254 dev eth0")
        reply = mmds_request(sh, "GET", "/latest/meta-data")
        assert " 401 " in reply and "No MMDS token provided." in reply, reply
        reply = mmds_request(sh, "PUT", "/latest/api/token")
        assert " 400 " in reply and "Token time to live value not found." in reply, reply
        reply = mmds_request(sh, "PUT", "/latest/api/token", "X-metadata-token-ttl-seconds: 0")
        assert "between 1 and 21600" in reply, reply
        token = mmds_request(sh, "PUT", "/latest/api/token", "X-metadata-token-ttl-seconds: 60")
        assert " 200 " in token, token
        token = token.strip().splitlines()[-1].strip()
        assert len(token) == 64, token
        reply = mmds_request(sh, "GET", "/latest/meta-data", "X-metadata-token: " + "0" * 64)
        assert " 401 " in reply and "MMDS token not valid." in reply, reply
        reply = mmds_request(sh, "GET", "/latest/meta-data/", f"X-metadata-token: {token}")
        assert reply.rstrip().endswith("ami-id\nnetwork/\nreservation-id"), reply
        reply = mmds_request(sh, "GET", "/latest//meta-data/ami-id", f"X-metadata-token: {token}",
                             "Accept: application/json")
        assert reply.rstrip().endswith('"ami-87654321"'), reply
        reply = mmds_request(sh, "GET", "/latest/nothing", f"X-metadata-token: {token}")
        assert " 404 " in reply and "Resource not found: /latest/nothing." in reply, reply
        reply = mmds_request(sh, "DELETE", "/latest", f"X-metadata-token: {token}")
        assert " 405 " in reply and "Allow: GET, PUT" in reply, reply
        # Changed after boot: the guest sees the new value at once.
        assert call(sock, "PATCH", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-new"}}}) == (204, None)
        reply = mmds_request(sh, "GET", "/latest/meta-data/ami-id", f"X-metadata-token: {token}")
        assert reply.rstrip().endswith("ami-new"), reply
        assert call(sock, "GET", "/mmds")[1]["latest"]["meta-data"]["ami-id"] == "ami-new"
        # The tap never saw a frame for MMDS: ARP for it is answered by kiln's MAC.
        assert "06:01:23:45:67:01" in sh.check("ip neigh show 169.254.169.254")
        # The network still works beside it.
        sh.check("ping -c 1 -W 5 10.9.0.1", timeout=60)
        assert call(sock, "PUT", "/mmds/config", {"network_interfaces": ["eth0"]}) == (
            400, {"fault_message": POST_BOOT})
        assert sh.poweroff() == 0
    finally:
        sh.close()

    # V1 from a configuration file: no token needed.
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(bzimage), "initrd_path": str(initrd), "boot_args": BOOT_ARGS},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "ktap0"}],
        "mmds-config": {"network_interfaces": ["eth0"], "version": "V1", "ipv4_address": "169.254.170.2"}}))
    sh = Shell(in_ns(netns, kiln, "--api-sock", sock, "--config-file", config))
    try:
        wait_for_socket(sock, sh.proc)
        assert call(sock, "PUT", "/mmds", META) == (204, None)
        sh.check("ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && "
                 "ip route add 169.254.170.2 dev eth0")
        reply = sh.check("printf 'GET /latest/meta-data/reservation-id HTTP/1.0\\r\\n\\r\\n' | "
                         "nc 169.254.170.2 80", timeout=60)
        assert " 200 " in reply and reply.rstrip().endswith("r-79054aef"), reply
        assert sh.poweroff() == 0
    finally:
        sh.close()


# Requests refused before boot: (method, path, body, expected fault_message substring). Each
# is sent against a configured, not yet started VM whose configuration must not change.
BAD_REQUESTS = [
    ("GET", "/nothing", None, "Invalid request method and/or path: GET nothing."),
    ("PUT", "/vm", {}, "Invalid request method and/or path: PUT vm."),
    ("DELETE", "/drives/rootfs", None, "Invalid request method and/or path: DELETE drives."),
    ("POST", "/actions", {"action_type": "InstanceStart"}, "Invalid request method and/or path: POST actions."),
    ("PUT", "/machine-config", None, "Empty PUT request."),
    ("PATCH", "/machine-config", None, "Empty PATCH request."),
    ("PATCH", "/machine-config", {}, "Empty PATCH request."),
    ("GET", "/", "{}", "GET request cannot have a body."),
    ("PUT", "/machine-config", '{"vcpu_count": 2,', "An error occurred when deserializing the json body"),
    ("PUT", "/machine-config", '{"vcpu_count": 2, "vcpu_count": 3, "mem_size_mib": 64}', "duplicate"),
    ("PUT", "/machine-config", "[1, 2]", "expected a JSON object"),
    ("PUT", "/machine-config", {"vcpu_count": 2}, "\"mem_size_mib\" is required"),
    ("PUT", "/machine-config", {"vcpu_count": 99, "mem_size_mib": 64}, "\"vcpu_count\": 99 is not in [1, 32]"),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "turbo": True}, "unknown field \"turbo\""),
    ("PATCH", "/machine-config", {"mem_size_mib": "lots"}, "\"mem_size_mib\": expected an integer"),
    ("PUT", "/boot-source", {"kernel_image_path": "/no/such/kernel"}, "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2) /no/such/kernel"),
    ("PUT", "/boot-source", {"boot_args": "x"}, "\"kernel_image_path\" is required"),
    ("PUT", "/drives/", {}, "The ID cannot be empty."),
    ("PUT", "/drives/bad-id", {"drive_id": "bad-id"}, "API Resource IDs can only contain alphanumeric characters and underscores."),
    ("PUT", "/drives/data", {"drive_id": "other", "path_on_host": "/x", "is_root_device": False},
     "The id from the path does not match the id from the body!"),
    ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": "/no/such/disk", "is_root_device": False},
     "Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) /no/such/disk"),
    ("PUT", "/drives/root2", {"drive_id": "root2", "path_on_host": "@DISK@", "is_root_device": True},
     "A root block device already exists! (\"rootfs\" and \"root2\" are both root devices)"),
    ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": "@DISK@", "is_root_device": False,
                             "rate_limiter": {"ops": {"size": 1}}},
     "\"rate_limiter\": \"ops\": \"refill_time\" is required"),
    ("PUT", "/network-interfaces/eth9", {"iface_id": "eth9", "host_dev_name": "nosuchtap"},
     "Network config error: tap nosuchtap: no such network interface"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth1", "host_dev_name": "tap0"},
     "The id from the path [eth0] does not match the id from the body [eth1]!"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "01:00:00:00:00:01"},
     "\"guest_mac\": \"01:00:00:00:00:01\" is not a unicast MAC"),
    ("PUT", "/logger", {"level": "Chatty"}, "\"level\": \"Chatty\" is not Error"),
    ("PUT", "/logger", {"log_path": "/no/such/dir/log"}, "Logger error: Failed to open target file"),
    ("PUT", "/actions", {"action_type": "Reboot"}, "unknown variant `Reboot`"),
    ("PUT", "/actions", {"action_type": "InstanceStart", "payload": 1}, "unknown field \"payload\""),
    ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}, PRE_BOOT),
    ("PATCH", "/vm", {"state": "Paused"}, PRE_BOOT),
    ("PATCH", "/vm", {"state": "Frozen"}, "unknown variant `Frozen`, expected `Paused` or `Resumed`"),
    ("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/x"}, PRE_BOOT),
    ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}, PRE_BOOT),
    ("PUT", "/metrics", {"metrics_path": "/no/such/metrics"}, "Metrics error: Failed to open target file"),
    ("PUT", "/actions", {"action_type": "FlushMetrics"}, PRE_BOOT),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/v"}, "\"guest_cid\": 2 is not in [3, "),
    ("PUT", "/balloon", {"amount_mib": 100000, "deflate_on_oom": True}, "\"amount_mib\": 100000 is not in [0, "),
    ("PUT", "/balloon", {"amount_mib": 1}, "\"deflate_on_oom\" is required"),
    ("GET", "/balloon", None, "No balloon device configured."),
    ("PATCH", "/balloon", {"amount_mib": 1}, PRE_BOOT),
    ("PUT", "/snapshot/create", {"snapshot_path": "/s", "mem_file_path": "/m"}, PRE_BOOT),
    ("PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m"},
     "Loading a microVM snapshot not allowed after configuring boot-specific resources."),
    ("PUT", "/migrate", {"destination_url": "tcp:127.0.0.1:1"}, PRE_BOOT),
    ("PATCH", "/mmds", {"latest": {}}, "MMDS error: The MMDS data store is not initialized."),
    ("PUT", "/mmds/other", {}, "Unrecognized PUT request path `other`."),
    ("PUT", "/mmds/config", {"network_interfaces": []}, "IDs that allow forwarding MMDS requests is empty."),
    ("PUT", "/mmds/config", {"network_interfaces": ["eth9"]}, "does not correspond to any existing network interface"),
    ("PUT", "/mmds/config", {"network_interfaces": ["x"], "ipv4_address": "10.0.0.1"}, "The MMDS IPv4 address is not link local."),
    ("PUT", "/mmds/config", {"network_interfaces": ["x"], "version": "V3"}, "An error occurred when deserializing the json body of a request: unknown variant `V3`, expected `V1` or `V2`"),
]


def test_bad_requests_change_nothing(kiln, bzimage, tmp_path):
    """No KVM needed: every request here is refused before boot."""
    sock = tmp_path / "api.sock"
    disk = ext4(tmp_path / "disk.ext4", "8M")
    proc = subprocess.Popen([str(kiln), "--api-sock", str(sock)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        assert call(sock, "PUT", "/boot-source", {"kernel_image_path": str(bzimage)}) == (204, None)
        assert call(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                                    "is_root_device": True}) == (204, None)
        before = call(sock, "GET", "/vm/config")
        for method, path, body, message in BAD_REQUESTS:
            if isinstance(body, dict):
                body = json.loads(json.dumps(body).replace("@DISK@", str(disk)))
            status, reply = call(sock, method, path, body)
            assert status == 400 and message in reply["fault_message"], (method, path, body, reply)
        assert call(sock, "GET", "/vm/config") == before
        assert call(sock, "GET", "/")[1]["state"] == "Not started"
        # The same socket path twice: the second kiln refuses it.
        second = subprocess.run([str(kiln), "--api-sock", str(sock)], capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 1 and f"--api-sock {sock}: Address already in use" in second.stderr, second
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 128 + 15
    assert not sock.exists()


def raw(sock, data, read=True):
    """Send raw bytes on a new connection; return what comes back (until close or 5 s)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while b"\r\n\r\n" not in out or not out.split(b"\r\n\r\n", 1)[1].endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


def test_client_flood_and_broken_clients(kiln, tmp_path):
    sock = tmp_path / "api.sock"
    proc = subprocess.Popen([str(kiln), "--api-sock", str(sock)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_socket(sock, proc)
        # Clients that disconnect mid-request: in the headers, in the body.
        for _ in range(20):
            raw(sock, b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Le", read=False)
            raw(sock, b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"vcpu", read=False)
        # An oversized body is refused; a truncated one (Content-Length too small) is malformed JSON.
        big = json.dumps({"kernel_image_path": "x" * 60000}).encode()
        reply = raw(sock, b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        assert reply.startswith(b"HTTP/1.1 400") and b"larger than the limit" in reply, reply[:300]
        reply = raw(sock, b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"ker")
        assert reply.startswith(b"HTTP/1.1 400") and b"deserializing" in reply, reply[:300]
        reply = raw(sock, b"NONSENSE\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400") or reply == b"", reply[:300]

        # 512 clients at once (more than kiln serves at once: the rest wait in the backlog), 8 requests each.
        results, errors = [], []

        def client():
            try:
                for _ in range(8):
                    results.append(call(sock, "GET", "/machine-config", timeout=60)[0])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(512)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:5]
        assert results == [200] * 512 * 8
        assert time.monotonic() - start < 120
        assert proc.poll() is None
        assert call(sock, "GET", "/")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
