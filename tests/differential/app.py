"""One small HTTP application behind every kind of transport the suite compares.

:func:`answer` decides every response once; :class:`App` serves it over ASGI
(``httpx.ASGITransport`` and uvicorn on 127.0.0.1), :func:`wsgi_app` over WSGI
(``httpx.WSGITransport``) and :func:`mock_handler` through ``httpx.MockTransport``.

Routes: ``/echo`` and below (what arrived, as JSON), ``/status/<code>``, ``/redirect?to=&status=``,
``/cookie`` (sets two cookies), ``/gzip`` (a gzip body in chunks), ``/chunks``,
``/digest`` (HTTP Digest auth, challenge and check), ``/slow?delay=`` (ASGI only) and
``/raise/<httpx exception>`` (MockTransport only).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, MutableMapping
from typing import Any

import httpx

from tests.servers import _digest_fields, _md5

Answer = tuple[int, list[tuple[str, str]], list[bytes]]

DIGEST_USER, DIGEST_PASSWORD, DIGEST_REALM, DIGEST_NONCE = "ada", "l0vel4ce", "diff", "n0nce"
GZIP_BODY = b"compressed text, " * 500
CHUNKS = [b"alpha-", b"beta-", b"gamma"]


def answer(method: str, target: str, headers: httpx.Headers, body: bytes) -> Answer:
    """The response to a request: status, headers, body chunks."""
    url = httpx.URL(target)
    path, query = url.path, url.params
    if path == "/echo" or path.startswith("/echo/"):
        seen = {
            "method": method,
            "path": path,
            "query": url.query.decode(),
            "headers": [[k.lower(), v] for k, v in headers.multi_items()],
            "body": body.decode("latin-1"),
        }
        return (
            200,
            [("content-type", "application/json"), ("x-echo", "1")],
            [json.dumps(seen).encode()],
        )
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        content = [] if code in (204, 304) or method == "HEAD" else [f"status {code}".encode()]
        return code, [("content-type", "text/plain")], content
    if path == "/redirect":
        status = int(query.get("status", "302"))
        return status, [("location", query.get("to", "/echo"))], []
    if path == "/cookie":
        cookies = [("set-cookie", "flavour=oat; Path=/"), ("set-cookie", "session=s1; HttpOnly")]
        return 200, cookies, [b"cookies set"]
    if path == "/gzip":
        packed = gzip.compress(GZIP_BODY, mtime=0)
        parts = [packed[i : i + 700] for i in range(0, len(packed), 700)]
        return 200, [("content-encoding", "gzip"), ("content-type", "text/plain")], parts
    if path == "/chunks":
        return 200, [("content-type", "application/octet-stream")], list(CHUNKS)
    if path == "/digest":
        return _digest(method, url, headers)
    return 404, [("content-type", "text/plain")], [b"no such route"]


def _digest(method: str, url: httpx.URL, headers: httpx.Headers) -> Answer:
    given = headers.get("authorization", "")
    if given.startswith("Digest "):
        got = _digest_fields(given)
        ha1 = _md5(f"{DIGEST_USER}:{DIGEST_REALM}:{DIGEST_PASSWORD}")
        ha2 = _md5(f"{method}:{got.get('uri', '')}")
        expected = _md5(
            f"{ha1}:{DIGEST_NONCE}:{got.get('nc')}:{got.get('cnonce')}:{got.get('qop')}:{ha2}"
        )
        if got.get("username") == DIGEST_USER and got.get("response") == expected:
            return 200, [("content-type", "text/plain")], [b"welcome, ada"]
    challenge = f'Digest realm="{DIGEST_REALM}", nonce="{DIGEST_NONCE}", qop="auth", algorithm=MD5'
    return 401, [("www-authenticate", challenge)], [b"who are you?"]


def _length(status: int, method: str, chunks: list[bytes]) -> list[tuple[str, str]]:
    """A Content-Length for single-chunk bodies; several chunks go out chunked."""
    if len(chunks) == 1 and status not in (204, 304) and method != "HEAD":
        return [("content-length", str(len(chunks[0])))]
    return []


class App:
    """The application over ASGI."""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = httpx.Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        )
        target = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        if scope["path"] == "/slow":
            await asyncio.sleep(float(httpx.URL(target).params.get("delay", "1")))
        status, extra, chunks = answer(scope["method"], target, headers, body)
        extra = extra + _length(status, scope["method"], chunks)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra],
            }
        )
        for index, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1}
            )
        if not chunks:
            await send({"type": "http.response.body", "body": b""})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application over WSGI."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size) if size else b""
    headers = httpx.Headers(
        [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]
    )
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    query = environ.get("QUERY_STRING", "")
    target = environ["PATH_INFO"] + (f"?{query}" if query else "")
    status, extra, chunks = answer(environ["REQUEST_METHOD"], target, headers, body)
    extra = extra + _length(status, environ["REQUEST_METHOD"], chunks)
    start_response(f"{status} {httpx.codes.get_reason_phrase(status)}", extra)
    return chunks


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives in the given chunks, on either kind of client."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def mock_handler(request: httpx.Request) -> httpx.Response:
    """The application through ``httpx.MockTransport`` (``/raise/<name>`` raises it)."""
    if request.url.path.startswith("/raise/"):
        error = getattr(httpx, request.url.path.rsplit("/", 1)[1])
        raise error("raised by the mock network", request=request)
    body = request.read()
    target = request.url.raw_path.decode()
    status, extra, chunks = answer(request.method, target, request.headers, body)
    extra = extra + _length(status, request.method, chunks)
    return httpx.Response(status, headers=extra, stream=Chunks(chunks))
