"""WebSockets through the client's stack, against real servers on 127.0.0.1.

The ASGI app below is served by uvicorn (:class:`DemoServer`) and, for ``wss://``,
by hypercorn over TLS; a raw asyncio server that never answers a ping stands for
a dead peer. Each test body runs on ``Client`` and on ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import sys
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import wsproto
from wsproto.events import CloseConnection, TextMessage
from wsproto.utilities import LocalProtocolError

import buttress
from buttress import (
    CacheConfig,
    CircuitBreakerConfig,
    LoggingConfig,
    RateLimitConfig,
    RetryConfig,
)
from buttress.testing import DemoServer, FakeClock
from buttress.websocket import MESSAGE_TOO_BIG
from tests.conftest import Either
from tests.servers import Certificates, PProxy, RawServer, TLSServer, switching

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-t0ken-4711"


class WebSocketApp:
    """An ASGI app with WebSocket endpoints whose behaviour the tests choose by path.

    ``/echo``              echoes every message (text and bytes), choosing the first
                           offered subprotocol
    ``/headers``           sends the handshake's headers and query string as JSON
    ``/big?size=N&key=K``  sends one text message of N bytes, then echoes
    ``/flood?count=N&key=K`` sends N messages at once, then echoes
    ``/closes?code=C``     sends "a" and "b", then closes with code C (reason "bye")
    ``/restart/<key>``     echoes; the first connection of <key> closes with 1012 after
                           one message, and the next ``?refuse=K`` handshakes get a 503
                           (with ``Retry-After: S`` given ``?retry_after=S``)
    ``/cached``            a cacheable HTTP answer, and an echo WebSocket at the same path
    ``/plain``             HTTP only: a WebSocket handshake gets 200, no upgrade
    ``/status?code=C``     refuses the handshake with status C
    """

    def __init__(self) -> None:
        self.connections: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.received: dict[str, list[str]] = defaultdict(list)
        self.close_codes: dict[str, int] = {}
        self._closed: dict[str, threading.Event] = defaultdict(threading.Event)

    def wait_for_close(self, key: str) -> int:
        """The close code the client sent on ``key``'s connection (waits for it to arrive)."""
        assert self._closed[key].wait(30), f"no close from the client on {key}"
        return self.close_codes[key]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _http(self, scope: dict[str, Any], send: Any) -> None:
        cacheable = scope["path"] == "/cached"
        headers = [(b"content-type", b"text/plain")]
        if cacheable:
            headers.append((b"cache-control", b"max-age=600"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"plain HTTP"})

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, query = scope["path"], parse_qs(scope["query_string"].decode())
        assert (await receive())["type"] == "websocket.connect"
        if path in ("/plain", "/status"):
            await self._refuse(send, int(query.get("code", ["200"])[0]))
            return
        key = path.removeprefix("/restart/")
        if path.startswith("/restart/"):
            self.connections[key] += 1
            if self.connections[key] > 1 and self.refused[key] < int(query.get("refuse", ["0"])[0]):
                self.refused[key] += 1
                await self._refuse(send, 503, query.get("retry_after", [None])[0])
                return
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        if path == "/headers":
            names = {name.decode(): value.decode() for name, value in scope["headers"]}
            seen = json.dumps({"headers": names, "query": query})
            await send({"type": "websocket.send", "text": seen})
        elif path == "/big":
            key = query.get("key", [path])[0]
            await send({"type": "websocket.send", "text": "x" * int(query["size"][0])})
        elif path == "/flood":
            key = query["key"][0]
            for number in range(int(query["count"][0])):
                await send({"type": "websocket.send", "text": f"m{number}"})
        elif path == "/closes":
            for text in ("a", "b"):
                await send({"type": "websocket.send", "text": text})
            reason = query.get("reason", ["bye"])[0]
            await send({"type": "websocket.close", "code": int(query["code"][0]), "reason": reason})
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.close_codes[key] = message["code"]
                self._closed[key].set()
                return
            if message.get("text") is not None:
                self.received[key].append(message["text"])
            if path.startswith("/restart/") and self.connections[key] == 1:
                await send({"type": "websocket.close", "code": 1012, "reason": "restarting"})
                return
            reply = {k: message[k] for k in ("text", "bytes") if message.get(k) is not None}
            await send({"type": "websocket.send", **reply})

    @staticmethod
    async def _refuse(send: Any, status: int, retry_after: str | None = None) -> None:
        # Connection: close, so the client does not reuse a connection the server drops.
        headers = [(b"connection", b"close")]
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        start = {"type": "websocket.http.response.start", "status": status, "headers": headers}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"not now"})


@pytest.fixture(scope="module")
def app() -> WebSocketApp:
    return WebSocketApp()


@pytest.fixture(scope="module")
def server(app: WebSocketApp) -> Iterator[DemoServer]:
    with DemoServer(app) as running:
        yield running


class Socket:
    """A ``WebSocket`` or an ``AsyncWebSocket`` behind one awaitable API."""

    def __init__(self, socket: buttress.WebSocket | buttress.AsyncWebSocket) -> None:
        self.socket = socket

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.socket, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call

    async def messages(self) -> list[str | bytes]:
        if isinstance(self.socket, buttress.AsyncWebSocket):
            return [message async for message in self.socket]
        return list(self.socket)


@asynccontextmanager
async def opened(either: Either, url: str, **options: Any) -> AsyncIterator[Socket]:
    socket = either.client.websocket(url, **options)
    if isinstance(socket, buttress.AsyncWebSocket):
        async with socket:
            yield Socket(socket)
    else:
        with socket:
            yield Socket(socket)


def resume_hook(either: Either, calls: list[int]) -> Callable[[Any], Any]:
    """An ``on_reconnect`` that sends "resume" (a coroutine function for the async client)."""
    if either.is_async:

        async def resume(ws: buttress.AsyncWebSocket) -> None:
            calls.append(ws.reconnects)
            await ws.send_text("resume")

        return resume

    def resume_sync(ws: buttress.WebSocket) -> None:
        calls.append(ws.reconnects)
        ws.send_text("resume")

    return resume_sync


# --- the session -------------------------------------------------------------------------


async def test_echoes_text_bytes_and_json(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/echo", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.socket.subprotocol == "chat.v2"
        assert ws.socket.response.status_code == 101
        await ws.send_text("héllo")
        assert await ws.receive_text() == "héllo"
        await ws.send_bytes(b"\x00\xff")
        assert await ws.receive_bytes() == b"\x00\xff"
        await ws.send_json({"n": 1, "tags": ["a"]})
        assert await ws.receive_json() == {"n": 1, "tags": ["a"]}


async def test_a_message_of_another_kind_raises_ours(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/echo") as ws:
        await ws.send_text("not JSON")
        with pytest.raises(buttress.InvalidJSONError, match="a message on the WebSocket"):
            await ws.receive_json()
        await ws.send_bytes(b'{"n": "\xff"}')
        with pytest.raises(buttress.InvalidJSONError, match="not UTF-8"):
            await ws.receive_json()
        await ws.send_bytes(b"binary")
        with pytest.raises(buttress.WebSocketError, match="expected a text message"):
            await ws.receive_text()
        await ws.send_text("text")
        with pytest.raises(buttress.WebSocketError, match="expected a binary message"):
            await ws.receive_bytes()


async def test_ws_scheme_urls_are_sent_over_http(make_client: Any, server: DemoServer) -> None:
    client = make_client()
    async with opened(client, server.url.replace("http://", "ws://") + "/echo") as ws:
        await ws.send_text("over ws://")
        assert await ws.receive() == "over ws://"


async def test_receive_timeout_raises_ours_and_keeps_the_session(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/echo") as ws:
        with pytest.raises(buttress.ReadTimeoutError, match="still open"):
            await ws.receive(timeout=0.01)  # nothing was sent: the wait runs out
        await ws.send_text("still here")
        assert await ws.receive_text(timeout=30) == "still here"


async def test_a_normal_close_ends_iteration(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/closes", params={"code": 1000}) as ws:
        assert await ws.messages() == ["a", "b"]
        with pytest.raises(buttress.WebSocketClosedError) as closed:
            await ws.receive()
    assert (closed.value.code, closed.value.reason) == (1000, "bye")


async def test_another_close_raises_with_its_code_and_reason(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/closes", params={"code": 1008}) as ws:
        assert await ws.receive() == "a"
        with pytest.raises(buttress.WebSocketClosedError) as closed:
            await ws.messages()
    assert closed.value.code == 1008
    assert "closed it with code 1008 (bye)" in str(closed.value)


async def test_sending_after_closing_raises(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/echo") as ws:
        await ws.close()
        await ws.close()  # twice is harmless
        with pytest.raises(buttress.WebSocketClosedError, match="you closed it"):
            await ws.send_text("late")


# --- limits ------------------------------------------------------------------------------


async def test_an_oversized_message_raises_ours_without_buffering_it(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    client = make_client(base_url=server.url)
    size = 4 * 1024 * 1024
    params = {"size": size, "key": key}
    async with opened(client, "/big", params=params, max_message_size=1000) as ws:
        with pytest.raises(buttress.MessageTooLargeError) as too_large:
            await ws.receive()
        # Later calls meet the close the client sent.
        with pytest.raises(buttress.WebSocketClosedError) as closed:
            await ws.receive()
    assert too_large.value.limit == 1000
    # Reading stopped at the limit plus one read of the socket, not after 4 MiB.
    assert 1000 < too_large.value.received <= 1000 + 64 * 1024
    assert closed.value.code == MESSAGE_TOO_BIG
    assert app.wait_for_close(key) == MESSAGE_TOO_BIG


async def test_a_message_at_the_limit_is_delivered(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    async with opened(client, "/big", params={"size": 5000}, max_message_size=5000) as ws:
        assert len(await ws.receive_text()) == 5000
        await ws.send_text("y" * 5000)  # the limit is on what arrives, in pieces or not
        assert await ws.receive_text() == "y" * 5000


async def test_leaving_with_unread_messages_closes_at_once(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    client = make_client(base_url=server.url)
    params = {"count": 200, "key": key}
    async with opened(client, "/flood", params=params, queue_size=4) as ws:
        assert await ws.receive() == "m0"
        # The rest fill the queue, and the reading stops until there is room again:
        # leaving must not wait for room that never comes.
    # The server sees the session end: with our close frame (1000), or, when the socket
    # still held unread messages, the reset that closing it sends may overtake the frame.
    assert app.wait_for_close(key) in (1000, 1005)


async def test_an_unanswered_keepalive_ping_ends_the_session(make_client: Any) -> None:
    client = make_client()
    received = bytearray()

    async def silent(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes
    ) -> None:  # accepts the handshake, then reads and never answers: no pong, no close
        writer.write(switching(key))
        while data := await reader.read(65536):
            received.extend(data)

    with RawServer(silent) as server:
        url = f"{server.url}/"
        options = {"keepalive_interval": 0.05, "keepalive_timeout": 0.05}
        async with opened(client, url, **options) as ws:
            # No message ever comes; the missing pong ends the wait long before 30 s.
            with pytest.raises(buttress.WebSocketClosedError) as closed:
                await ws.receive(timeout=30)
        assert closed.value.code == 1006
        assert received[0] & 0x0F == 0x9  # the first frame it got was a ping


# --- the handshake goes through the client's stack -----------------------------------------


class Recorder(buttress.Middleware):
    """Middleware that notes the status of every response it sees."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def __call__(self, request: httpx.Request, call_next: Any) -> httpx.Response:
        response: httpx.Response = await call_next(request)
        self.statuses.append(response.status_code)
        return response


async def test_handshake_has_the_clients_settings_and_every_layer(
    make_client: Any, server: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    client = make_client(
        base_url=server.url,
        headers={"X-Team": "web"},
        auth=("bearer", SECRET),
        cache=CacheConfig(),
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimitConfig(max_requests=100, time_window=60),
        middleware=[recorder],
        logging=LoggingConfig(log_bodies=True),
    )
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx's, httpcore's, httpx-ws's
    async with opened(client, "/headers", params={"access_token": SECRET}) as ws:
        seen = await ws.receive_json()
        await ws.send_text("the session works under every layer")
    headers = seen["headers"]
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["x-team"] == "web"
    assert headers["upgrade"] == "websocket"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", headers["traceparent"])
    assert seen["query"] == {"access_token": [SECRET]}
    assert recorder.statuses == [101]
    handshake = [r for r in caplog.records if r.name == "buttress.request" and "101" in r.message]
    assert handshake, "the handshake is logged like any request"
    assert getattr(handshake[0], "request_id", None) == headers["x-request-id"]
    assert SECRET not in caplog.text
    assert "access_token=[REDACTED]" in caplog.text


async def test_a_server_reason_is_scrubbed_of_the_clients_secrets(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url, auth=("bearer", SECRET))
    params = {"code": 1008, "reason": f"token {SECRET} revoked"}
    async with opened(client, "/closes", params=params) as ws:
        with pytest.raises(buttress.WebSocketClosedError) as closed:
            await ws.messages()
    assert SECRET not in str(closed.value)
    assert SECRET not in closed.value.reason
    assert "[REDACTED]" in closed.value.reason


async def test_the_cache_lets_a_handshake_through_untouched(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url, cache=CacheConfig())
    assert (await client.get("/cached")).text == "plain HTTP"
    assert (await client.get("/cached")).extensions["buttress.cache"].from_cache
    async with opened(client, "/cached") as ws:
        await ws.send_text("not from the cache")
        assert await ws.receive_text() == "not from the cache"
        # Neither looked up nor stored: an upgrade is no exchange the cache judges.
        assert "buttress.cache" not in ws.socket.response.extensions
    stats = client.client.cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 1, 1)


async def test_a_server_that_does_not_upgrade_raises_ours(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url)
    with pytest.raises(buttress.WebSocketUpgradeError, match="answered 200") as refused:
        async with opened(client, "/plain"):
            pass
    assert refused.value.response.status_code == 200


async def test_an_error_status_raises_the_clients_usual_error(
    make_client: Any, server: DemoServer
) -> None:
    client = make_client(base_url=server.url)
    with pytest.raises(buttress.AuthenticationError):
        async with opened(client, "/status", params={"code": 401}):
            pass


async def test_a_transport_that_keeps_the_connection_raises_ours(server: DemoServer) -> None:
    async with buttress.AsyncClient(base_url=server.url, backend="aiohttp") as client:
        with pytest.raises(buttress.WebSocketUpgradeError, match="did not hand over"):
            async with client.websocket("/echo"):
                pass


async def test_wss_uses_the_clients_tls_settings(make_client: Any, certs: Certificates) -> None:
    with TLSServer(certs, WebSocketApp(), alpn=("http/1.1",)) as tls:
        # The server's certificate is signed by the test CA only: the session opens
        # because the handshake used the client's verify= setting.
        client = make_client(verify=str(certs.ca))
        async with opened(client, tls.url.replace("https://", "wss://") + "/echo") as ws:
            assert ws.socket.response.url.scheme == "https"
            await ws.send_text("over TLS")
            assert await ws.receive_text() == "over TLS"


async def test_the_handshake_goes_through_the_clients_proxy(
    make_client: Any,
    http_proxy: PProxy,
    certs: Certificates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with TLSServer(certs, WebSocketApp(), alpn=("http/1.1",)) as tls:
        # wss:// through an HTTP proxy that demands credentials: a CONNECT tunnel.
        client = make_client(proxy=http_proxy.url, verify=str(certs.ca))
        async with opened(client, tls.url.replace("https://", "wss://") + "/echo") as ws:
            await ws.send_text("through the proxy")
            assert await ws.receive_text() == "through the proxy"
        # The same with a wrong password: the proxy refuses the tunnel.
        refused = make_client(
            proxy=http_proxy.url.replace(http_proxy.password, "wrong"),
            verify=str(certs.ca),
            retry=False,
        )
        with pytest.raises(buttress.ConnectionError):
            async with opened(refused, tls.url.replace("https://", "wss://") + "/echo"):
                pass
    assert http_proxy.password not in caplog.text


# --- reconnection ------------------------------------------------------------------------


async def test_reconnects_with_the_retry_backoff_and_resumes(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    clock = FakeClock()
    # The client sends each handshake once: the waits recorded are the reconnection's.
    client = make_client(base_url=server.url, clock=clock, retry=False)
    calls: list[int] = []
    policy = RetryConfig(max_attempts=4, backoff_factor=1.0, jitter="none")
    options = {"reconnect": policy, "on_reconnect": resume_hook(client, calls)}
    async with opened(client, f"/restart/{key}", params={"refuse": 1}, **options) as ws:
        await ws.send_text("first")  # the server restarts (1012) after this one
        assert await ws.receive_text() == "resume"  # echoed on the new connection
        await ws.send_text("second")
        assert await ws.receive_text() == "second"
        assert ws.socket.reconnects == 1
    # 1 s after the drop, a 503, then 2 s before the handshake that worked.
    assert clock.sleeps == [1.0, 2.0]
    assert calls == [1]
    assert app.connections[key] == 3
    assert app.received[key] == ["first", "resume", "second"]


async def test_gives_up_after_max_attempts_with_the_last_failure(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    clock = FakeClock()
    client = make_client(base_url=server.url, clock=clock, retry=False)
    policy = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")
    async with opened(client, f"/restart/{key}", params={"refuse": 99}, reconnect=policy) as ws:
        await ws.send_text("first")
        with pytest.raises(buttress.ServerError) as failed:
            await ws.receive()
        assert failed.value.status_code == 503
        with pytest.raises(buttress.WebSocketClosedError) as closed:
            await ws.receive()
    assert closed.value.code == 1012
    assert clock.sleeps == [0.5, 1.0]
    assert app.connections[key] == 3


class Reader:
    """Waits for one message in a task (async) or a thread (sync) of its own."""

    def __init__(self, ws: Socket) -> None:
        socket = ws.socket
        if isinstance(socket, buttress.AsyncWebSocket):
            self._task: asyncio.Task[Any] | None = asyncio.ensure_future(socket.receive())
        else:
            self._task = None
            self._outcome: list[Any] = []
            self._thread = threading.Thread(target=self._receive, args=(socket,), daemon=True)
            self._thread.start()

    def _receive(self, socket: buttress.WebSocket) -> None:
        try:
            self._outcome.append(socket.receive())
        except Exception as exc:
            self._outcome.append(exc)

    async def result(self) -> Any:
        if self._task is not None:
            return await self._task
        self._thread.join(30)
        (outcome,) = self._outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_a_reader_in_another_task_follows_the_session(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    clock = FakeClock()
    client = make_client(base_url=server.url, clock=clock, retry=False)
    calls: list[int] = []
    policy = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")
    options = {"reconnect": policy, "on_reconnect": resume_hook(client, calls)}
    async with opened(client, f"/restart/{key}", **options) as ws:
        reader = Reader(ws)
        await ws.send_text("first")  # the server restarts; the reader meets the close
        assert await reader.result() == "resume"
        await ws.send_text("second")  # the writer goes on with the new connection
        assert await ws.receive_text() == "second"
        waiting = Reader(ws)
        await ws.close()
        with pytest.raises(buttress.WebSocketClosedError, match="you closed it"):
            await waiting.result()
    assert (calls, clock.sleeps, app.connections[key]) == ([1], [0.5], 2)


async def test_a_refused_reconnection_waits_as_long_as_retry_after_says(
    make_client: Any, server: DemoServer, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    clock = FakeClock()
    client = make_client(base_url=server.url, clock=clock, retry=False)
    calls: list[int] = []
    policy = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")
    options = {"reconnect": policy, "on_reconnect": resume_hook(client, calls)}
    params = {"refuse": 1, "retry_after": 7}
    async with opened(client, f"/restart/{key}", params=params, **options) as ws:
        await ws.send_text("first")
        assert await ws.receive_text() == "resume"
    assert clock.sleeps == [0.5, 7.0]


async def test_a_close_that_is_not_a_restart_is_not_reconnected(
    make_client: Any, server: DemoServer
) -> None:
    clock = FakeClock()
    client = make_client(base_url=server.url, clock=clock)
    async with opened(client, "/closes", params={"code": 1008}, reconnect=True) as ws:
        with pytest.raises(buttress.WebSocketClosedError):
            await ws.messages()
    assert clock.sleeps == []


async def test_reconnect_true_follows_the_clients_retry_configuration(
    make_client: Any, server: DemoServer, app: WebSocketApp, request: pytest.FixtureRequest
) -> None:
    key = re.sub(r"\W", "-", request.node.name)
    clock = FakeClock()
    retry = RetryConfig(max_attempts=2, backoff_factor=3.0, jitter="none")
    client = make_client(base_url=server.url, clock=clock, retry=retry)
    calls: list[int] = []
    hook = resume_hook(client, calls)
    async with opened(client, f"/restart/{key}", reconnect=True, on_reconnect=hook) as ws:
        await ws.send_text("first")
        assert await ws.receive_text() == "resume"
    assert clock.sleeps == [3.0]


def test_a_message_in_pieces_is_counted_whole_and_the_count_starts_again() -> None:
    from buttress._websocket_protocol import SizeLimitedConnection

    server = wsproto.connection.Connection(wsproto.ConnectionType.SERVER)
    client = SizeLimitedConnection(limit=1000)
    for data, finished in (("x" * 600, True), ("y" * 400, True), ("z" * 600, False)):
        client.receive_data(server.send(TextMessage(data=data, message_finished=finished)))
    assert [len(getattr(event, "data", "")) for event in client.events()] == [600, 400, 600]
    client.receive_data(server.send(TextMessage(data="z" * 600)))  # the same message: 1200
    (event,) = client.events()
    assert isinstance(event, CloseConnection)
    assert (event.code, client.too_large) == (MESSAGE_TOO_BIG, 1200)


def test_sending_after_the_server_closed_raises_the_servers_close() -> None:
    from buttress._websocket_protocol import SizeLimitedConnection, ended

    server = wsproto.connection.Connection(wsproto.ConnectionType.SERVER)
    client = SizeLimitedConnection(limit=None)
    client.receive_data(server.send(CloseConnection(code=1012, reason="restarting")))
    list(client.events())
    with pytest.raises(LocalProtocolError) as refused:
        client.send(TextMessage(data="too late"))
    error = ended(refused.value, client, httpx.Request("GET", "http://a.test/ws"))
    assert isinstance(error, buttress.WebSocketClosedError)
    assert (error.code, error.reason) == (1012, "restarting")


async def test_using_it_outside_its_block_raises_ours(make_client: Any, server: DemoServer) -> None:
    client = make_client(base_url=server.url)
    ws = Socket(client.client.websocket("/echo"))
    with pytest.raises(buttress.WebSocketError, match="not open"):
        await ws.send_text("too early")
    with pytest.raises(buttress.WebSocketError, match="not open"):
        ws.socket.subprotocol  # noqa: B018 - the property raises


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_message_size": 0}, "max_message_size must be a positive integer"),
        ({"keepalive_interval": -1}, "keepalive_interval must be a positive number"),
        ({"queue_size": 0}, "queue_size must be a positive integer"),
        ({"on_reconnect": print}, "on_reconnect is only called when the session reconnects"),
        ({"reconnect": "yes"}, "reconnect must be a RetryConfig"),
        ({"json": {"a": 1}}, "has no body"),
        ({"max_mesage_size": 10}, "max_mesage_size"),
    ],
)
async def test_bad_options_raise_configuration_errors(
    make_client: Any, options: dict[str, Any], match: str
) -> None:
    client = make_client(base_url="http://127.0.0.1:1")
    with pytest.raises(buttress.ConfigurationError, match=match):
        client.client.websocket("/ws", **options)


async def test_without_the_extra_the_error_names_it(
    make_client: Any, server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx_ws", None)  # as if httpx-ws were not installed
    monkeypatch.delitem(sys.modules, "buttress._websocket_protocol", raising=False)
    monkeypatch.delattr(buttress, "_websocket_protocol", raising=False)
    client = make_client(base_url=server.url)
    with pytest.raises(buttress.ConfigurationError, match=r"buttress\[websockets\]"):
        async with opened(client, "/echo"):
            pass
