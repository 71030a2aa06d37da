"""A small REST API to try buttress against, with the failure modes real APIs have.

It is a plain ASGI application (no framework), served on 127.0.0.1 by
:class:`buttress.testing.DemoServer`. Every instance keeps its own state, so
tests never see each other's counters.

========================================  =============================================
endpoint                                  what it does
========================================  =============================================
``GET /users?offset=&limit=``             offset pagination: ``{"data", "total", "meta"}``
``GET /users/pages?page=&per_page=``      page pagination: ``{"results", "page", "total_pages"}``
``GET /users/cursor?cursor=&limit=``      cursor pagination: ``{"items", "meta": {"next_cursor"}}``
``GET /users/linked?page=&per_page=``     a JSON list with an RFC 8288 ``Link`` header
``GET|PUT|PATCH|DELETE /users/{id}``      one user (404 with an error body if unknown)
``POST /users``                           201 with the created user
``ANY /flaky?key=&failures=&status=``     fails ``failures`` times per key, then 200
``GET /flaky-body?key=&failures=``        first ``failures`` bodies per key end early, then 200
``GET /slow?delay=``                      answers after ``delay`` seconds
``GET /rate-limited?key=&limit=&window=`` 429 with Retry-After and RateLimit headers past ``limit``
``GET /cacheable?key=&max_age=``          ETag + Cache-Control; 304 for a matching If-None-Match
``GET /events?count=&drop_after=``        server-sent events; resumes after ``Last-Event-ID``;
                                          drops the connection after event ``drop_after``
``GET /download?size=&chunked=``          ``size`` bytes, streamed in chunks, with Content-Length
                                          (none, so chunked encoding, with ``chunked=1``)
``GET /compressed?size=&coding=``         ``size`` zero bytes, sent gzip- (or ``deflate``-)
                                          compressed as they are made: a decompression bomb
``GET /truncated?size=&send=&chunked=``   declares ``size`` bytes, sends ``send``, hangs up
``POST|PUT /upload``                      ``{"size", "sha256", "content_type"}`` of the body
``ANY /echo``                             the request as JSON: method, path, query, headers, body
``GET /status/{code}``                    that status, with ``{"error": {"message": ...}}``
``GET /invalid-json``                     ``application/json`` that is not JSON
``GET /redirect?to=&status=``             a redirect to ``to``
``GET /stats``                            how many requests each path has had
``/oauth/...``, ``GET /me``                an OAuth 2.0 authorization server and a resource
                                          it protects (:mod:`buttress.testing.oauth`)
========================================  =============================================
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .oauth import OAuthProvider

__all__ = ["DemoAPI", "create_app"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_FIRST_NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Barbara Liskov", "Edsger Dijkstra"]
TOTAL_USERS = 100


def _user(user_id: int) -> dict[str, Any]:
    name = _FIRST_NAMES[user_id - 1] if user_id <= len(_FIRST_NAMES) else f"User {user_id}"
    handle = name.lower().replace(" ", ".")
    return {
        "id": user_id,
        "name": name,
        "email": f"{handle}@example.com",
        "created_at": f"2024-01-{(user_id % 28) + 1:02d}T12:00:00Z",
    }


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def int_arg(self, name: str, default: int) -> int:
        try:
            return int(self.query.get(name, default))
        except ValueError:
            return default

    def float_arg(self, name: str, default: float) -> float:
        try:
            return float(self.query.get(name, default))
        except ValueError:
            return default


@dataclass
class _Drop(Exception):
    """Raised by a streamed body to cut the connection without finishing the response."""


@dataclass
class _Response:
    status: int = 200
    body: bytes | AsyncIterator[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> _Response:
        body = json.dumps(data).encode()
        return cls(status, body, [("content-type", "application/json"), *_pairs(headers)])


def _pairs(headers: dict[str, str]) -> list[tuple[str, str]]:
    return [(name.replace("_", "-"), value) for name, value in headers.items()]


def _numbered_page(request: _Request) -> tuple[int, int, list[dict[str, Any]], int]:
    """The ``page`` asked for (from 1), ``per_page`` (1 to 100), its users and the page count."""
    page = max(1, request.int_arg("page", 1))
    per_page = min(100, max(1, request.int_arg("per_page", 10)))
    start = (page - 1) * per_page
    users = [_user(i) for i in range(start + 1, min(start + per_page, TOTAL_USERS) + 1)]
    return page, per_page, users, -(-TOTAL_USERS // per_page)


def _error(status: int, message: str, **headers: str) -> _Response:
    return _Response.json({"error": {"message": message, "status": status}}, status, **headers)


class DemoAPI:
    """The demo API as an ASGI application; each instance has its own counters.

    Examples:
        >>> from buttress.testing import DemoServer
        >>> import httpx
        >>> with DemoServer(DemoAPI()) as server:
        ...     httpx.get(f"{server.url}/users/2").json()["name"]
        'Grace Hopper'
    """

    def __init__(self, *, oauth: OAuthProvider | None = None) -> None:
        self.oauth = OAuthProvider() if oauth is None else oauth
        """The authorization server behind ``/oauth/...`` and ``/me``."""
        self.hits: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._windows: dict[str, list[float]] = {}
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[_Response]]]] = [
            ("GET", re.compile(r"/users"), self.users_offset),
            ("GET", re.compile(r"/users/pages"), self.users_pages),
            ("GET", re.compile(r"/users/cursor"), self.users_cursor),
            ("GET", re.compile(r"/users/linked"), self.users_linked),
            ("POST", re.compile(r"/users"), self.create_user),
            ("*", re.compile(r"/users/(?P<user_id>\d+)"), self.user),
            ("*", re.compile(r"/flaky"), self.flaky),
            ("GET", re.compile(r"/flaky-body"), self.flaky_body),
            ("GET", re.compile(r"/slow"), self.slow),
            ("GET", re.compile(r"/rate-limited"), self.rate_limited),
            ("GET", re.compile(r"/cacheable"), self.cacheable),
            ("GET", re.compile(r"/events"), self.events),
            ("*", re.compile(r"/download"), self.download),
            ("GET", re.compile(r"/compressed"), self.compressed),
            ("GET", re.compile(r"/truncated"), self.truncated),
            ("POST", re.compile(r"/upload"), self.upload),
            ("PUT", re.compile(r"/upload"), self.upload),
            ("*", re.compile(r"/echo"), self.echo),
            ("*", re.compile(r"/status/(?P<code>\d{3})"), self.status),
            ("GET", re.compile(r"/invalid-json"), self.invalid_json),
            ("*", re.compile(r"/redirect"), self.redirect),
            ("GET", re.compile(r"/stats"), self.stats),
            ("GET", re.compile(r"/\.well-known/openid-configuration"), self.openid_configuration),
            ("GET", re.compile(r"/oauth/authorize"), self.oauth_authorize),
            ("POST", re.compile(r"/oauth/device_authorization"), self.oauth_device_authorization),
            ("*", re.compile(r"/oauth/device"), self.oauth_device),
            ("POST", re.compile(r"/oauth/token"), self.oauth_token),
            ("GET", re.compile(r"/me"), self.me),
        ]

    def reset(self) -> None:
        """Forget what earlier requests did: hits, failures given, rate windows, OAuth state.

        The pytest fixture ``buttress_demo_server`` calls it before each test, so
        tests sharing the session's server never see each other's counters.

        Examples:
            >>> api = DemoAPI()
            >>> api.hits["/users/1"] += 1
            >>> api.reset()
            >>> sum(api.hits.values())
            0
        """
        self.hits.clear()
        self._failures.clear()
        self._windows.clear()
        self.oauth.reset()

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = _Request(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"))),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        self.hits[request.path] += 1
        response = await self._dispatch(request)
        declared = any(name == "content-length" for name, _ in response.headers)
        if request.method == "HEAD" and isinstance(response.body, bytes) and not declared:
            length = [("content-length", str(len(response.body)))]
            response = _Response(response.status, b"", response.headers + length)
        await self._send(response, send)

    async def _dispatch(self, request: _Request) -> _Response:
        allowed: list[str] = []
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method in ("*", request.method) or (method == "GET" and request.method == "HEAD"):
                return await handler(request, **match.groupdict())
            allowed.append(method)
        if allowed:
            return _error(405, f"{request.method} not allowed", allow=", ".join(allowed))
        return _error(404, f"no route for {request.path}")

    @staticmethod
    async def _send(response: _Response, send: Send) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if isinstance(response.body, bytes):
            if not any(k == b"content-length" for k, _ in headers):
                headers.append((b"content-length", str(len(response.body)).encode()))
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": response.body})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            async for chunk in response.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except _Drop:
            return  # the server closes the connection mid-body
        await send({"type": "http.response.body", "body": b""})

    # -- users and pagination ------------------------------------------------------------

    async def users_offset(self, request: _Request) -> _Response:
        offset = max(0, request.int_arg("offset", 0))
        limit = min(100, max(1, request.int_arg("limit", 10)))
        users = [_user(i) for i in range(offset + 1, min(offset + limit, TOTAL_USERS) + 1)]
        return _Response.json(
            {
                "data": users,
                "total": TOTAL_USERS,
                "offset": offset,
                "limit": limit,
                "meta": {"total": TOTAL_USERS},
            }
        )

    async def users_pages(self, request: _Request) -> _Response:
        page, per_page, users, total_pages = _numbered_page(request)
        return _Response.json(
            {
                "results": users,
                "page": page,
                "per_page": per_page,
                "total_pages": total_pages,
                "total": TOTAL_USERS,
            }
        )

    async def users_cursor(self, request: _Request) -> _Response:
        cursor = request.query.get("cursor")
        try:
            after = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid cursor")
        limit = min(100, max(1, request.int_arg("limit", 10)))
        last = min(after + limit, TOTAL_USERS)
        users = [_user(i) for i in range(after + 1, last + 1)]
        next_cursor = (
            base64.urlsafe_b64encode(str(last).encode()).decode() if last < TOTAL_USERS else None
        )
        return _Response.json({"items": users, "meta": {"next_cursor": next_cursor}})

    async def users_linked(self, request: _Request) -> _Response:
        page, per_page, users, last = _numbered_page(request)
        base = f"/users/linked?per_page={per_page}&page="
        links = [f'<{base}1>; rel="first"', f'<{base}{last}>; rel="last"']
        if page < last:
            links.insert(0, f'<{base}{page + 1}>; rel="next"')
        if page > 1:
            links.insert(0, f'<{base}{page - 1}>; rel="prev"')
        return _Response.json(users, link=", ".join(links))

    async def create_user(self, request: _Request) -> _Response:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(payload, dict) or "name" not in payload:
            return _error(422, "name is required")
        return _Response.json({"id": TOTAL_USERS + 1, **payload}, 201)

    async def user(self, request: _Request, user_id: str) -> _Response:
        number = int(user_id)
        if not 1 <= number <= TOTAL_USERS:
            return _error(404, f"user {number} not found")
        if request.method in ("GET", "HEAD"):
            return _Response.json(_user(number))
        if request.method == "DELETE":
            return _Response(204)
        if request.method in ("PUT", "PATCH"):
            try:
                changes = json.loads(request.body or b"{}")
            except ValueError:
                return _error(400, "body is not JSON")
            return _Response.json({**_user(number), **changes, "id": number})
        return _error(405, f"{request.method} not allowed", allow="GET, PUT, PATCH, DELETE")

    # -- failure modes ---------------------------------------------------------------------

    async def flaky(self, request: _Request) -> _Response:
        key = request.query.get("key", "default")
        failures = request.int_arg("failures", 2)
        self._failures[key] += 1
        attempt = self._failures[key]
        if attempt <= failures:
            headers = {}
            if "retry_after" in request.query:
                headers["retry-after"] = request.query["retry_after"]
            return _error(
                request.int_arg("status", 503), f"failure {attempt} of {failures}", **headers
            )
        return _Response.json({"ok": True, "attempts": attempt})

    async def flaky_body(self, request: _Request) -> _Response:
        key = "flaky-body:" + request.query.get("key", "default")
        failures = request.int_arg("failures", 1)
        self._failures[key] += 1
        attempt = self._failures[key]
        body = json.dumps({"ok": True, "attempts": attempt, "padding": "x" * 200}).encode()
        if attempt > failures:
            return _Response(200, body, [("content-type", "application/json")])

        async def broken() -> AsyncIterator[bytes]:
            yield body[:20]
            raise ConnectionAbortedError("demo: the body ends early on purpose")

        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        return _Response(200, broken(), headers)

    async def slow(self, request: _Request) -> _Response:
        delay = min(request.float_arg("delay", 1.0), 30.0)
        await asyncio.sleep(delay)
        return _Response.json({"slept": delay})

    async def rate_limited(self, request: _Request) -> _Response:
        key = request.query.get("key", "default")
        limit = request.int_arg("limit", 5)
        window = request.float_arg("window", 60.0)
        now = asyncio.get_running_loop().time()
        recent = [t for t in self._windows.get(key, []) if now - t < window]
        reset = int(window - (now - recent[0])) + 1 if recent else int(window)
        if len(recent) >= limit:
            self._windows[key] = recent
            return _error(
                429,
                "rate limit exceeded",
                retry_after=str(reset),
                x_ratelimit_limit=str(limit),
                x_ratelimit_remaining="0",
                x_ratelimit_reset=str(reset),
                ratelimit=f'"default";r=0;t={reset}',
                ratelimit_policy=f'"default";q={limit};w={int(window)}',
            )
        recent.append(now)
        self._windows[key] = recent
        remaining = limit - len(recent)
        return _Response.json(
            {"ok": True, "remaining": remaining},
            x_ratelimit_limit=str(limit),
            x_ratelimit_remaining=str(remaining),
            x_ratelimit_reset=str(reset),
            ratelimit=f'"default";r={remaining};t={reset}',
            ratelimit_policy=f'"default";q={limit};w={int(window)}',
        )

    async def cacheable(self, request: _Request) -> _Response:
        key = request.query.get("key", "default")
        version = request.query.get("version", "1")
        max_age = request.int_arg("max_age", 60)
        body = json.dumps({"key": key, "version": version}).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = [("etag", etag), ("cache-control", f"max-age={max_age}")]
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return _Response(304, b"", headers)
        return _Response(200, body, [("content-type", "application/json"), *headers])

    async def events(self, request: _Request) -> _Response:
        count = min(request.int_arg("count", 5), 10_000)
        interval = min(request.float_arg("interval", 0.0), 5.0)
        start = request.int_arg("start", 0)
        drop_after = request.int_arg("drop_after", 0)
        last_id = request.headers.get("last-event-id")
        first = int(last_id) + 1 if last_id and last_id.isdigit() else start + 1

        async def stream() -> AsyncIterator[bytes]:
            yield b": demo event stream\nretry: 100\n\n"
            for number in range(first, count + 1):
                payload = json.dumps({"n": number})
                yield f"id: {number}\nevent: tick\ndata: {payload}\n\n".encode()
                if number == drop_after:
                    raise _Drop
                if interval:
                    await asyncio.sleep(interval)

        return _Response(
            200, stream(), [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        )

    async def download(self, request: _Request) -> _Response:
        size = max(0, request.int_arg("size", 1_000_000))
        chunk = bytes(range(256)) * 256  # 64 KiB of a recognisable pattern

        async def stream() -> AsyncIterator[bytes]:
            left = size
            while left > 0:
                piece = chunk[: min(left, len(chunk))]
                left -= len(piece)
                yield piece

        headers = [("content-type", "application/octet-stream")]
        if request.query.get("chunked") != "1":
            headers.append(("content-length", str(size)))
        if request.method == "HEAD":
            return _Response(200, b"", headers)
        return _Response(200, stream(), headers)

    async def compressed(self, request: _Request) -> _Response:
        size = max(0, request.int_arg("size", 1_000_000))
        coding = request.query.get("coding", "gzip")
        if coding not in ("gzip", "deflate"):
            return _error(400, "coding must be gzip or deflate")
        zeros = bytes(1 << 20)

        async def stream() -> AsyncIterator[bytes]:
            # Made a mebibyte at a time: a client that stops early costs little.
            wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
            zipper = zlib.compressobj(6, zlib.DEFLATED, wbits)
            for start in range(0, size, len(zeros)):
                piece = zipper.compress(zeros[: size - start])
                if piece:
                    yield piece
            yield zipper.flush()

        headers = [("content-type", "application/octet-stream"), ("content-encoding", coding)]
        return _Response(200, stream(), headers)

    async def truncated(self, request: _Request) -> _Response:
        size = max(0, request.int_arg("size", 1000))
        sent = min(size, max(0, request.int_arg("send", size // 2)))

        async def stream() -> AsyncIterator[bytes]:
            yield b"x" * sent
            raise _Drop

        headers = [("content-type", "application/octet-stream")]
        if request.query.get("chunked") != "1":
            headers.append(("content-length", str(size)))
        return _Response(200, stream(), headers)

    async def upload(self, request: _Request) -> _Response:
        return _Response.json(
            {
                "size": len(request.body),
                "sha256": hashlib.sha256(request.body).hexdigest(),
                "content_type": request.headers.get("content-type"),
                "transfer_encoding": request.headers.get("transfer-encoding"),
            }
        )

    async def echo(self, request: _Request) -> _Response:
        try:
            parsed: Any = json.loads(request.body) if request.body else None
        except ValueError:
            parsed = None
        return _Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "body": request.body.decode("utf-8", "replace"),
                "json": parsed,
            }
        )

    async def status(self, request: _Request, code: str) -> _Response:
        status = int(code)
        headers = {}
        if "retry_after" in request.query:
            headers["retry-after"] = request.query["retry_after"]
        if status in (204, 304) or status < 200:
            return _Response(status, b"", _pairs(headers))
        if status < 400:
            return _Response.json({"status": status}, status, **headers)
        return _error(status, request.query.get("message", f"demo error {status}"), **headers)

    async def invalid_json(self, request: _Request) -> _Response:
        return _Response(200, b'{"id": 1, "name": oops}', [("content-type", "application/json")])

    async def redirect(self, request: _Request) -> _Response:
        target = request.query.get("to", "/users/1")
        return _Response(request.int_arg("status", 302), b"", [("location", target)])

    async def stats(self, request: _Request) -> _Response:
        return _Response.json(dict(self.hits))

    # -- OAuth 2.0 (buttress.testing.oauth) ----------------------------------------------

    async def openid_configuration(self, request: _Request) -> _Response:
        metadata = self.oauth.discovery(_origin(request))
        return _Response.json(metadata, cache_control="max-age=3600")

    async def oauth_authorize(self, request: _Request) -> _Response:
        status, body, location = self.oauth.authorize(request.query)
        if location is not None:
            return _Response(status, b"", [("location", location)])
        return _Response.json(body, status)

    async def oauth_device_authorization(self, request: _Request) -> _Response:
        status, body = self.oauth.device_authorization(request, _origin(request))
        return _Response.json(body, status, cache_control="no-store")

    async def oauth_device(self, request: _Request) -> _Response:
        status, body = self.oauth.device_page(request.query)
        return _Response.json(body, status)

    async def oauth_token(self, request: _Request) -> _Response:
        status, body, headers = self.oauth.token(request)
        return _Response.json(body, status, **headers)

    async def me(self, request: _Request) -> _Response:
        status, body, challenge = self.oauth.resource(request.headers.get("authorization"))
        return _Response.json(
            body, status, **({"www-authenticate": challenge} if challenge else {})
        )


def _origin(request: _Request) -> str:
    """This server's own URL, as the client addressed it (the OAuth issuer)."""
    return f"http://{request.headers.get('host', '127.0.0.1')}"


def create_app() -> DemoAPI:
    """A fresh demo API application (an ASGI callable).

    Examples:
        >>> app = create_app()
        >>> callable(app)
        True
    """
    return DemoAPI()
