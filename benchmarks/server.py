"""The server the benchmarks talk to: nginx when installed, else a bundled raw asyncio one.

Both answer every request with the same ~900-byte JSON document over HTTP/1.1
keep-alive, marked ``Cache-Control: no-store`` (so an enabled cache always
misses), from their own process, so the server never shares the client's
interpreter. The bundled server does no routing and no header parsing: it
counts request ends (``\\r\\n\\r\\n``) and writes one canned response per
request, which makes it several times faster than any Python client in this
suite. ``cpu_seconds(server.pid)`` lets the harness check it is not the bottleneck.

The bundled server has one route besides: ``GET /download?size=N`` answers
``N`` bytes (``application/octet-stream``, ``no-store``) from one preallocated
buffer, honouring the socket's flow control, for the streaming benchmark.

Run it alone with ``python -m benchmarks.server`` (prints the port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BODY", "Server", "cpu_seconds"]


def _body() -> bytes:
    users = [
        {
            "id": i,
            "name": f"User {i}",
            "email": f"user{i}@example.com",
            "active": i % 2 == 0,
            "roles": ["reader", "writer"],
        }
        for i in range(1, 10)
    ]
    return json.dumps({"data": users, "page": 1, "total": 9}, separators=(",", ":")).encode()


BODY = _body()
"""The JSON document every request receives (about 900 bytes)."""

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


DOWNLOAD = b"GET /download?size="
_BLOCK = memoryview(bytes(1 << 20))  # what a download sends, again and again


def _download_head(size: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Cache-Control: no-store\r\nContent-Length: " + str(size).encode() + b"\r\n\r\n"
    )


class _Protocol(asyncio.Protocol):
    """One canned response per request head; pipelined requests are answered in order.

    A download is written block by block while the transport accepts more
    (``pause_writing`` / ``resume_writing``); requests behind it wait their turn.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._left = 0  # bytes of the current download still to write
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._answer()

    def _answer(self) -> None:
        buffer, transport = self._buffer, self._transport
        if transport is None or self._left:
            return
        if DOWNLOAD not in buffer:  # the fast path: canned answers only
            count = buffer.count(b"\r\n\r\n")
            if count:
                transport.write(RESPONSE * count)
                buffer = buffer[buffer.rfind(b"\r\n\r\n") + 4 :]
            self._buffer = buffer
            return
        while not self._left and b"\r\n\r\n" in buffer:
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            if head.startswith(DOWNLOAD):
                size = int(head[len(DOWNLOAD) :].split(None, 1)[0].split(b"&", 1)[0])
                transport.write(_download_head(size))
                self._left = size
            else:
                transport.write(RESPONSE)
        self._buffer = buffer
        self._pump()

    def _pump(self) -> None:
        transport = self._transport
        if not self._left or transport is None:
            return
        while self._left and not self._paused:
            block = _BLOCK[: min(self._left, len(_BLOCK))]
            self._left -= len(block)
            transport.write(block)  # may call pause_writing()
        if not self._left:  # done: answer what queued up behind it
            self._answer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time process ``pid`` has used so far (Linux; ``None`` elsewhere or for no pid)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, deadline: float) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


_NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log crit;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {tmp};
    proxy_temp_path {tmp};
    fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp};
    scgi_temp_path {tmp};
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            add_header Cache-Control no-store always;
            return 200 '{body}';
        }}
    }}
}}
"""


class Server:
    """A fast HTTP/1.1 server in a child process: ``with Server() as server: server.url``.

    Args:
        kind: ``"nginx"``, ``"builtin"`` or ``"auto"`` (nginx when on PATH).
    """

    def __init__(self, kind: str = "auto") -> None:
        if kind == "auto":
            kind = "nginx" if shutil.which("nginx") else "builtin"
        self.kind = kind
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Server:
        if self.kind == "nginx":
            self._start_nginx()
        else:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.server"],
                stdout=subprocess.PIPE,
                cwd=Path(__file__).resolve().parent.parent,
            )
            assert self._process.stdout is not None
            self.port = int(self._process.stdout.readline())
        _wait_listening(self.port, time.monotonic() + 10)
        return self

    def _start_nginx(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="buttress-bench-")
        self.port = _free_port()
        conf = Path(self._tmp.name) / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(tmp=self._tmp.name, port=self.port, body=BODY.decode()))
        self._process = subprocess.Popen(
            ["nginx", "-p", self._tmp.name, "-c", str(conf), "-e", f"{self._tmp.name}/error.log"],
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int | None:
        """The process whose CPU time is the server's (``None`` for nginx, whose
        worker is a child of the master)."""
        return self._process.pid if self._process and self.kind == "builtin" else None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            if self._process.stdout is not None:
                self._process.stdout.close()
        if self._tmp is not None:
            self._tmp.cleanup()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port))
