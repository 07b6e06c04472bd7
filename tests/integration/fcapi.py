# SPDX-License-Identifier: Apache-2.0
"""Clients of Firecracker's host-side protocols, for the tests and the benchmarks: its REST API
on a Unix socket (Python's http.client) and its vsock Unix socket ("CONNECT <port>")."""
import http.client
import json
import os
import socket
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def call(sock_path, method, path, body=None, timeout=60):
    """One request; returns (status, decoded JSON body or None)."""
    conn = UnixHTTPConnection(sock_path, timeout)
    try:
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        conn.request(method, path, body=data)
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, json.loads(text) if text else None
    finally:
        conn.close()


def open_files(pid):
    """What @pid's descriptors point at. A descriptor may close between listing and reading it (an API
    connection the client has closed is closed by kiln whenever its event loop gets to it)."""
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return targets


def wait_for_socket(sock_path, proc, timeout=60):
    """Wait until @sock_path accepts connections (or @proc ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(sock_path):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(sock_path))
                    return
            except OSError:
                pass
        time.sleep(0.01)
    raise AssertionError(f"API socket {sock_path} not accepting (kiln exit {proc.poll()})")


def vsock_connect(uds, port, timeout=60):
    """Firecracker's host-initiated vsock connection: CONNECT <port>, then "OK <host port>".
    Retries while the guest has no listener yet (kiln then resets the connection)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(str(uds))
            s.sendall(f"CONNECT {port}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(1)
                if not chunk:
                    raise ConnectionResetError("closed before OK")
                line += chunk
            assert line.startswith(b"OK ") and int(line[3:]) > 0, line
            return s
        except (ConnectionError, FileNotFoundError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def snapshot(sock, state, mem, kind="Full"):
    """Pause the VM behind @sock and write a snapshot of @kind: state file @state, memory @mem."""
    assert call(sock, "PATCH", "/vm", {"state": "Paused"}) == (204, None)
    status, body = call(sock, "PUT", "/snapshot/create", {"snapshot_type": kind,
                                                          "snapshot_path": str(state),
                                                          "mem_file_path": str(mem)})
    assert status == 204, body


def load_snapshot(sock, state, mem):
    """Load (and resume) the snapshot @state with the File memory @mem into the kiln at @sock."""
    assert call(sock, "PUT", "/snapshot/load", {
        "snapshot_path": str(state), "resume_vm": True,
        "mem_backend": {"backend_type": "File", "backend_path": str(mem)}}) == (204, None)
