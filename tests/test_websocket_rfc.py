"""WebSocket sessions held to RFC 6455 and to their documented limits, against real servers.

An ASGI app served by uvicorn (:class:`DemoServer`) stands for a well-behaved server;
raw asyncio servers (:class:`RawServer`) send what no library would: frames that
break the protocol, handshake answers nobody asked for, or nothing read at all.
Each test body runs on ``Client`` and on ``AsyncClient``, within a wall-clock
bound (:func:`within`), so that a regression to a hang fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio
import pytest

import buttress
from buttress import RetryConfig
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import RawServer, client_frame, frame, switching
from tests.test_websocket import Socket, opened

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def within(either: Either, seconds: float, body: Callable[[], Awaitable[T]]) -> T:
    """``body()``, failing the test if it takes longer than ``seconds``.

    A sync client blocks: its body runs on an event loop of its own in a daemon
    thread, which the test stops waiting for (a hang leaves only that thread).
    """
    if either.is_async:
        with anyio.fail_after(seconds):
            return await body()
    returned: list[T] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            returned.append(asyncio.run(_awaited(body)))
        except BaseException as exc:  # handed to the test below
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds}s: a hang")
    if raised:
        raise raised[0]
    return returned[0]


async def _awaited(body: Callable[[], Awaitable[T]]) -> T:
    return await body()


async def wait_event(event: threading.Event, seconds: float) -> bool:
    """Wait for a server's ``event`` without blocking the event loop."""
    return await anyio.to_thread.run_sync(event.wait, seconds)


def connection_state(ws: Socket) -> Any:
    """The wsproto state of the session's current connection."""
    socket = ws.socket
    if isinstance(socket, buttress.AsyncWebSocket):
        assert socket._held is not None
        return socket._held.session.connection.state
    assert socket._session is not None
    return socket._session.connection.state


async def until_the_server_closed(ws: Socket) -> None:
    """Wait until the client has taken in the server's close frame (its state says so)."""
    while connection_state(ws).name not in ("REMOTE_CLOSING", "CLOSED"):
        await anyio.sleep(0.01)  # for the reading thread or task; within() bounds it


# --- servers -------------------------------------------------------------------------------


class RFCApp:
    """An ASGI app whose WebSocket behaviour the tests choose by path.

    ``/twice/<key>``  the first connection sends "a" and "b" and closes with the code
                      given by ``?code=`` (1000 by default); later ones send "second",
                      then echo
    ``/refuse/<key>`` the first connection closes with 1012 at once; every later
                      handshake is answered 503
    ``/echo/<key>``   echoes; the close code the client sends is kept for <key>
    """

    def __init__(self) -> None:
        self.connections: dict[str, int] = defaultdict(int)
        self.close_codes: dict[str, int] = {}
        self._closed: dict[str, threading.Event] = defaultdict(threading.Event)

    def wait_for_close(self, key: str) -> int:
        assert self._closed[key].wait(10), f"no close from the client on {key}"
        return self.close_codes[key]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        kind, _, key = scope["path"].strip("/").partition("/")
        self.connections[key] += 1
        first = self.connections[key] == 1
        if kind == "refuse" and not first:
            headers = [(b"connection", b"close")]
            await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": b"down"})
            return
        await send({"type": "websocket.accept"})
        if kind == "refuse":
            await send({"type": "websocket.close", "code": 1012})
            return
        if kind == "twice" and first:
            code = int(
                dict(re.findall(r"(\w+)=(\w+)", scope["query_string"].decode())).get("code", 1000)
            )
            for text in ("a", "b"):
                await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.close", "code": code})
            return
        if kind == "twice":
            await send({"type": "websocket.send", "text": "second"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})
        self.close_codes[key] = message["code"]
        self._closed[key].set()


@pytest.fixture(scope="module")
def app() -> RFCApp:
    return RFCApp()


@pytest.fixture(scope="module")
def server(app: RFCApp) -> Iterator[DemoServer]:
    with DemoServer(app) as running:
        yield running


# --- received messages are delivered before the close --------------------------------------


async def test_messages_received_before_the_servers_close_are_delivered(
    make_client: Any, server: DemoServer, request: pytest.FixtureRequest
) -> None:
    client = make_client(base_url=server.url, retry=False)
    key = re.sub(r"\W", "-", request.node.name)

    async def body() -> list[Any]:
        seen: list[Any] = []
        async with opened(client, f"/twice/{key}", keepalive_interval=None) as ws:
            await until_the_server_closed(ws)  # "a", "b" and the close have arrived
            with pytest.raises(buttress.WebSocketClosedError) as refused:
                await ws.send_text("too late")
            seen.append(refused.value.code)
            seen.extend([await ws.receive(timeout=5), await ws.receive(timeout=5)])
            with pytest.raises(buttress.WebSocketClosedError) as closed:
                await ws.receive(timeout=5)
            seen.append(closed.value.code)
        return seen

    assert await within(client, 30, body) == [1000, "a", "b", 1000]


async def test_messages_received_before_a_restart_come_before_the_new_connections(
    make_client: Any, server: DemoServer, app: RFCApp, request: pytest.FixtureRequest
) -> None:
    client = make_client(base_url=server.url, retry=False)
    key = re.sub(r"\W", "-", request.node.name)
    policy = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")

    async def body() -> list[Any]:
        url = f"/twice/{key}?code=1012"
        async with opened(client, url, keepalive_interval=None, reconnect=policy) as ws:
            await until_the_server_closed(ws)
            await ws.send_text("resent")  # fails on the first connection, goes on the second
            seen = [await ws.receive(timeout=5) for _ in range(4)]
            return [*seen, ws.socket.reconnects]

    assert await within(client, 30, body) == ["a", "b", "second", "resent", 1]
    assert app.connections[key] == 2


# --- queue_size --------------------------------------------------------------------------------


async def test_unread_messages_wait_in_the_queue_while_pings_are_answered(
    make_client: Any,
) -> None:
    async def three_then_ping(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key) + b"".join(frame(0x1, f"m{n}".encode()) for n in range(3)))
        writer.write(frame(0x9, b"are you there"))
        await raw.read_until_eof(reader, writer)

    with RawServer(three_then_ping) as raw:
        client = make_client()

        async def body() -> list[Any]:
            async with opened(client, raw.url, keepalive_interval=None, queue_size=3) as ws:
                # Nothing is received yet: the three messages fit in the queue, so the
                # session goes on reading, and answers the ping.
                answered = await wait_event(raw.ponged, 10)
                return [answered, *[await ws.receive(timeout=5) for _ in range(3)]]

        assert await within(client, 30, body) == [True, "m0", "m1", "m2"]


# --- the connection ends ---------------------------------------------------------------------


async def test_leaving_ends_the_tcp_connection(make_client: Any) -> None:
    async def answers_and_waits(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key))
        await raw.read_until_eof(reader, writer)  # answers the close, never closes first

    with RawServer(answers_and_waits) as raw:
        client = make_client()

        async def body() -> bool:
            async with opened(client, raw.url, keepalive_interval=None) as ws:
                await ws.send_text("hi")
            # The close handshake is done: the client ends the connection (RFC 6455 7.1.1).
            return await wait_event(raw.eof, 10)

        assert await within(client, 30, body)
        assert raw.close_code == 1000


async def test_a_server_that_never_answers_the_close_is_left_all_the_same(
    make_client: Any,
) -> None:
    async def never_answers(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionResetError):
            while True:
                await client_frame(reader)
        raw.eof.set()

    with RawServer(never_answers) as raw:
        client = make_client(timeout=0.5)  # the wait for the server's close is bounded by it

        async def body() -> bool:
            async with opened(client, raw.url, keepalive_interval=None):
                pass
            return await wait_event(raw.eof, 10)

        assert await within(client, 30, body)


async def test_sending_to_a_server_that_stops_reading_times_out(make_client: Any) -> None:
    async def never_reads(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key))
        await asyncio.Event().wait()  # neither reads nor answers: until the server stops

    with RawServer(never_reads) as raw:
        client = make_client(timeout=0.5)
        chunk = b"x" * (256 * 1024)

        async def body() -> buttress.WebSocketClosedError:
            options = {"keepalive_interval": 0.2, "keepalive_timeout": 0.2}
            async with opened(client, raw.url, **options) as ws:
                with pytest.raises(buttress.WebSocketClosedError) as lost:
                    await send_until_it_fails(ws, chunk)
                # The session is over: later calls meet the same end.
                with pytest.raises(buttress.WebSocketClosedError):
                    await ws.send_bytes(b"again")
            return lost.value

        lost = await within(client, 20, body)
    assert lost.code == 1006
    assert "write timeout (0.5s)" in str(lost)


async def send_until_it_fails(ws: Socket, chunk: bytes) -> None:
    for _ in range(2000):  # 500 MB: far more than any socket buffer holds
        await ws.send_bytes(chunk)


# --- a server that breaks the protocol ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "code", "why"),
    [
        (frame(0x1, b"hello", mask=True), 1002, "masked"),
        (frame(0x1, b"\xff\xfe not UTF-8"), 1007, "utf-8"),
        (frame(0x3, b"x"), 1002, "opcode"),
        (frame(0x1, b"x", rsv=4), 1002, "Reserved bit"),
        (frame(0x8, struct.pack("!H", 999) + b"bad"), 1002, "invalid code"),
        (frame(0x9, b"p", fin=False), 1002, "fragment control"),
        (frame(0x0, b"x"), 1002, "CONTINUATION"),
    ],
    ids=[
        "masked",
        "invalid-utf8",
        "reserved-opcode",
        "rsv1",
        "close-999",
        "fragmented-ping",
        "continuation",
    ],
)
async def test_a_server_breaking_the_protocol_is_failed_with_the_right_code(
    make_client: Any, sent: bytes, code: int, why: str
) -> None:
    async def breaks(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key) + sent)
        await raw.read_until_eof(reader, writer)

    with RawServer(breaks) as raw:
        client = make_client()

        async def body() -> buttress.WebSocketClosedError:
            async with opened(client, raw.url, keepalive_interval=None) as ws:
                with pytest.raises(buttress.WebSocketClosedError) as failed:
                    await ws.receive(timeout=5)
                with pytest.raises(buttress.WebSocketClosedError):  # and sending is over too
                    await ws.send_text("after")
                assert await wait_event(raw.closed, 10)
            return failed.value

        failed = await within(client, 30, body)
    assert failed.code == code
    assert "the server broke the WebSocket protocol" in str(failed)
    assert "server closed it" not in str(failed)
    assert why.lower() in failed.reason.lower()
    assert raw.close_code == code  # the client's close frame says why (RFC 6455 7.4.1)


# --- the handshake answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "upgrade", "offered", "match"),
    [
        (b"Sec-WebSocket-Protocol: evil\r\n", True, ["chat"], "subprotocol it was not offered"),
        (b"Sec-WebSocket-Protocol: evil\r\n", True, None, "subprotocol it was not offered"),
        (b"Sec-WebSocket-Protocol: chat, evil\r\n", True, ["chat", "evil"], "not offered"),
        (b"Sec-WebSocket-Extensions: permessage-deflate\r\n", True, None, "extension"),
        (b"", False, None, "Upgrade: websocket"),
        (b"Upgrade: websocket\r\n", False, None, "Connection: Upgrade"),
    ],
    ids=["unoffered", "none-offered", "two-chosen", "extension", "no-upgrade", "no-connection"],
)
async def test_a_handshake_answer_not_asked_for_is_refused(
    make_client: Any, extra: bytes, upgrade: bool, offered: list[str] | None, match: str
) -> None:
    async def answers(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(switching(key, extra, upgrade=upgrade))
        await raw.read_until_eof(reader, writer)

    with RawServer(answers) as raw:
        client = make_client()

        async def body() -> None:
            with pytest.raises(buttress.WebSocketUpgradeError, match=match) as refused:
                async with opened(client, raw.url, keepalive_interval=None, subprotocols=offered):
                    pass
            assert refused.value.response.status_code == 101
            assert await wait_event(raw.eof, 10)  # the connection is not kept

        await within(client, 30, body)


async def test_the_offered_subprotocol_is_accepted(make_client: Any) -> None:
    async def chooses(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:
        writer.write(
            switching(key, b"Sec-WebSocket-Protocol: chat.v1\r\n")
            .replace(b"Upgrade: websocket", b"upgrade: WebSocket")
            .replace(b"Connection: Upgrade", b"connection: keep-alive, upgrade")
        )
        await raw.read_until_eof(reader, writer)

    with RawServer(chooses) as raw:
        client = make_client()

        async def body() -> str | None:
            async with opened(
                client, raw.url, keepalive_interval=None, subprotocols=["chat.v2", "chat.v1"]
            ) as ws:
                return ws.socket.subprotocol

        assert await within(client, 30, body) == "chat.v1"


# --- close codes ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, True])
async def test_a_close_code_that_may_not_be_sent_is_refused(
    make_client: Any, server: DemoServer, app: RFCApp, code: int, request: pytest.FixtureRequest
) -> None:
    client = make_client(base_url=server.url)
    key = re.sub(r"\W", "-", request.node.name)

    async def body() -> None:
        async with opened(client, f"/echo/{key}", keepalive_interval=None) as ws:
            with pytest.raises(buttress.ConfigurationError, match="may not be sent"):
                await ws.close(code)
            await ws.send_text("still open")  # nothing went out: the session is intact
            assert await ws.receive(timeout=5) == "still open"

    await within(client, 30, body)
    assert app.wait_for_close(key) == 1000  # leaving closed it normally


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, ""), (1001, "bye"), (3000, "é" * 61), (4999, "")]
)
async def test_a_close_code_that_may_be_sent_goes_out(
    make_client: Any,
    server: DemoServer,
    app: RFCApp,
    code: int,
    reason: str,
    request: pytest.FixtureRequest,
) -> None:
    client = make_client(base_url=server.url)
    key = re.sub(r"\W", "-", request.node.name)

    async def body() -> None:
        async with opened(client, f"/echo/{key}", keepalive_interval=None) as ws:
            await ws.close(code, reason)

    await within(client, 30, body)
    assert app.wait_for_close(key) == code


async def test_a_close_reason_too_long_for_a_frame_is_refused(
    make_client: Any, server: DemoServer, request: pytest.FixtureRequest
) -> None:
    client = make_client(base_url=server.url)
    key = re.sub(r"\W", "-", request.node.name)

    async def body() -> None:
        async with opened(client, f"/echo/{key}", keepalive_interval=None) as ws:
            with pytest.raises(buttress.ConfigurationError, match="at most 123 bytes"):
                await ws.close(1000, "é" * 62)  # 124 bytes

    await within(client, 30, body)


# --- reconnection attempts ---------------------------------------------------------------------


async def test_max_attempts_counts_the_reconnection_handshakes_under_the_clients_retry(
    make_client: Any, server: DemoServer, app: RFCApp, request: pytest.FixtureRequest
) -> None:
    clock = FakeClock()
    # The client's default retry= is on: it retries the first handshake, but a
    # reconnection's handshakes are reconnect='s alone to count.
    client = make_client(base_url=server.url, clock=clock)
    key = re.sub(r"\W", "-", request.node.name)
    policy = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")

    async def body() -> int:
        async with opened(
            client, f"/refuse/{key}", keepalive_interval=None, reconnect=policy
        ) as ws:
            with pytest.raises(buttress.ServerError) as refused:
                await ws.receive(timeout=5)
            return refused.value.status_code

    assert await within(client, 30, body) == 503
    # The first connection, then two reconnection attempts: three handshakes.
    assert app.connections[key] == 3
    assert clock.sleeps == [0.5, 1.0]
