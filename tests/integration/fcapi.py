"""A client for Firecracker's API on a Unix socket (Python's http.client), for the tests and
the benchmark."""
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
