# SPDX-License-Identifier: Apache-2.0
"""Host-side endpoints for the network tests: run as `python3 nethelp.py MODE ...` (often inside
a network namespace through `ip netns exec`), or import the in-process servers.

  send HOST PORT MIB    connect (retrying for 60 s), send MIB MiB of random bytes, print the
                        sha256 and byte count
  recv ADDR PORT        accept one connection on ADDR:PORT, print "listening", then the sha256
                        and byte count of everything received and the seconds from its first
                        byte to its end
"""
import hashlib
import os
import socket
import socketserver
import struct
import sys
import threading
import time


def send(host, port, mib):
    deadline = time.monotonic() + 60
    while True:
        try:
            s = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    s.settimeout(600)
    h, n = hashlib.sha256(), 0
    for _ in range(mib):
        block = os.urandom(1 << 20)
        h.update(block)
        s.sendall(block)
        n += len(block)
    s.close()
    print(h.hexdigest(), n, flush=True)


def recv(addr, port):
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, port))
    lsock.listen(1)
    lsock.settimeout(600)
    print("listening", flush=True)
    conn, _ = lsock.accept()
    conn.settimeout(600)
    h, n, first = hashlib.sha256(), 0, None
    while True:
        block = conn.recv(1 << 16)
        if not block:
            break
        first = first or time.monotonic()
        h.update(block)
        n += len(block)
    conn.close()
    print(h.hexdigest(), n, f"{time.monotonic() - (first or time.monotonic()):.3f}", flush=True)


class DnsServer:
    """A UDP DNS responder on ADDR:53 that answers A queries for @name with @ip."""

    def __init__(self, addr, name, ip):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.name, self.ip = name.lower().rstrip("."), socket.inet_aton(ip)
        self.sock.settimeout(0.2)
        self.queries = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            labels, i = [], 12
            while i < len(data) and data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode(errors="replace"))
                i += 1 + data[i]
            qname, qtype = ".".join(labels).lower(), struct.unpack(">H", data[i + 1:i + 3])[0]
            self.queries.append(qname)
            question = data[12:i + 5]
            found = qname == self.name and qtype == 1
            # The name exists: other types get an empty NOERROR answer, other names NXDOMAIN.
            flags = 0x8180 if qname == self.name else 0x8183
            reply = data[:2] + struct.pack(">HHHHH", flags, 1, 1 if found else 0, 0, 0) + question
            if found:
                reply += struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + self.ip
            self.sock.sendto(reply, peer)

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


class HttpServer:
    """An HTTP server on 127.0.0.1 (a free port) that serves @body at every path."""

    def __init__(self, body):
        class Handler(socketserver.StreamRequestHandler):
            def handle(handler):
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                handler.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                handler.wfile.write(body)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"nethelp: unknown mode {sys.argv[1]}")
