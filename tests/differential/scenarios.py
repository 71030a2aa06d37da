"""The scenario table: every row runs through bare httpx and through the full stack.

A row names the request (method, path, body, streaming, redirects, auth,
cookies, timeout), the network it goes to and the clients it applies to
(``httpx.ASGITransport`` serves only the async client, ``httpx.WSGITransport``
only the sync one). ``{other}`` in a path is another origin of the same app.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BOTH = ("sync", "async")


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    method: str = "GET"
    network: str = "mock"  # mock, asgi, wsgi, server, mounts, proxy, refused
    body: Callable[[bool], dict[str, Any]] | None = None  # fresh request kwargs per run
    stream: str | None = None  # None (read by httpx), "raw" (iter_raw) or "bytes" (iter_bytes)
    follow_redirects: bool = False
    auth: str | None = None  # None, "digest" or "recording"
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    clients: tuple[str, ...] = BOTH

    @property
    def in_process(self) -> bool:
        """Chunk boundaries are exact only when no socket sits in between."""
        return self.network in ("mock", "asgi", "wsgi")


def _bytes(is_async: bool) -> dict[str, Any]:
    return {"content": b"\x00raw bytes\xff"}


def _text(is_async: bool) -> dict[str, Any]:
    return {"content": "text, caf\u00e9"}


def _json(is_async: bool) -> dict[str, Any]:
    return {"json": {"name": "ada", "tags": ["a", "b"], "n": 1}}


def _form(is_async: bool) -> dict[str, Any]:
    return {"data": {"name": "ada", "city": "London"}}


def _files(is_async: bool) -> dict[str, Any]:
    return {
        "data": {"note": "with files"},
        "files": {"upload": ("notes.txt", io.BytesIO(b"file body"), "text/plain")},
        # httpx draws a random boundary per request unless the caller names one
        "headers": {"Content-Type": "multipart/form-data; boundary=differential"},
    }


def _generator(is_async: bool) -> dict[str, Any]:
    def chunks() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    async def achunks() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    return {"content": achunks() if is_async else chunks()}


def _headers_and_params(is_async: bool) -> dict[str, Any]:
    return {"headers": {"X-Custom": "1", "Accept": "text/plain"}, "params": {"q": "a b", "n": 2}}


BODIES = {
    "bytes": _bytes,
    "str": _text,
    "json": _json,
    "form": _form,
    "files": _files,
    "generator": _generator,
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ERRORS = (
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ConnectError",
    "ReadError",
    "WriteError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "ProxyError",
    "UnsupportedProtocol",
)

SCENARIOS: list[Scenario] = [
    *(
        Scenario(f"method-{m}-{net}", "/echo", m, net)
        for m in METHODS
        for net in ("mock", "server")
    ),
    Scenario("params-and-headers", "/echo", body=_headers_and_params),
    *(
        Scenario(f"body-{name}-{net}", "/echo", "POST", net, body=body)
        for name, body in BODIES.items()
        for net in ("mock", "server")
    ),
    Scenario("put-json-mounts", "/echo", "PUT", "mounts", body=_json),
    *(Scenario(f"status-{code}", f"/status/{code}") for code in (204, 304, 404, 500, 503)),
    Scenario("status-500-server", "/status/500", network="server"),
    Scenario("status-503-post-generator", "/status/503", "POST", body=_generator),
    *(
        Scenario(f"stream-{path}-{mode}-{net}", f"/{path}", network=net, stream=mode)
        for path in ("chunks", "gzip")
        for mode in ("raw", "bytes")
        for net in ("mock", "server", "mounts")
    ),
    Scenario("read-gzip", "/gzip", network="server"),
    Scenario("asgi-echo-json", "/echo", "POST", "asgi", body=_json, clients=("async",)),
    Scenario("asgi-stream-raw", "/chunks", network="asgi", stream="raw", clients=("async",)),
    Scenario("asgi-stream-gzip", "/gzip", network="asgi", stream="bytes", clients=("async",)),
    Scenario("wsgi-echo-form", "/echo", "POST", "wsgi", body=_form, clients=("sync",)),
    Scenario("wsgi-stream-raw", "/chunks", network="wsgi", stream="raw", clients=("sync",)),
    Scenario("redirect-not-followed", "/redirect?to=/echo"),
    *(
        Scenario(
            f"redirect-same-origin-{net}", "/redirect?to=/echo", network=net, follow_redirects=True
        )
        for net in ("mock", "server")
    ),
    *(
        Scenario(
            f"redirect-cross-origin-{net}",
            "/redirect?to={other}/echo",
            network=net,
            follow_redirects=True,
        )
        for net in ("mock", "server")
    ),
    Scenario(
        "redirect-307-keeps-body",
        "/redirect?to=/echo&status=307",
        "POST",
        body=_json,
        follow_redirects=True,
    ),
    Scenario("redirect-then-stream", "/redirect?to=/chunks", stream="raw", follow_redirects=True),
    *(Scenario(f"error-{name}", f"/raise/{name}") for name in ERRORS),
    Scenario("error-streamed", "/raise/ReadError", stream="raw"),
    Scenario("error-connection-refused", "/echo", network="refused"),
    Scenario("error-read-timeout", "/slow?delay=3", network="server", timeout=0.2),
    *(
        Scenario(f"digest-{net}", "/digest", network=net, auth="digest")
        for net in ("mock", "server")
    ),
    Scenario("auth-flow-calls", "/echo", "POST", body=_json, auth="recording"),
    *(Scenario(f"cookies-set-{net}", "/cookie", network=net) for net in ("mock", "server")),
    Scenario("cookies-sent", "/echo", cookies={"flavour": "rye"}),
    Scenario("proxy-echo", "/echo", network="proxy"),
]
