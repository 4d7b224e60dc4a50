"""A tiny HTTP server on 127.0.0.1 whose answers a test scripts, for transport-level tests."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0
    declared_length: int | None = None  # lie about Content-Length (truncated body)
    reset: bool = False  # drop the connection (TCP RST) instead of answering


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float


@contextmanager
def scripted(handler: Callable[[str, int], Reply],
             tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[Seen]]]:
    """Serve ``handler(path, n)`` (n = 0-based request count) on a free port (HTTPS with ``tls``)."""
    seen: list[Seen] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            with lock:
                n = len(seen)
                seen.append(Seen(self.path, dict(self.headers), time.monotonic()))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            reply = handler(self.path, n)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.reset:
                # SO_LINGER 0: close() sends a TCP RST, as a crashed proxy or peer would.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(reply.declared_length or len(reply.body)))
            if reply.declared_length:
                self.send_header("Connection", "close")
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(reply.body)
            if reply.declared_length:
                self.close_connection = True

        do_GET = _serve
        do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
