"""Record real HTTP exchanges once, play them back in every later test run.

A :class:`Cassette` is a JSON file of request/response pairs. Its
:meth:`~Cassette.transport` is a sync and async httpx transport: give it to a
``buttress.Client``, a ``buttress.AsyncClient`` or a plain httpx client.

Modes:

- ``"replay"``: answer from the file only; a request that is not in it raises
  :class:`~buttress.ConfigurationError` (nothing reaches the network).
- ``"once"``: replay when the file exists, otherwise record it.
- ``"record"``: send everything to the network and write a new file (at once: a
  test that sends no request leaves an empty cassette, which replays).
- ``"append"``: replay what is known, record what is not.

Secrets never reach the file: ``Authorization``, cookies, API-key headers and
secret-looking query parameters (``api_key``, ``token``, ...) are written as
``[REDACTED]``, with the same vocabulary buttress uses for logs and error
messages: the headers and parameters the client's auth declares (a custom
``APIKeyAuth`` header), the names of ``LoggingConfig(redact_*=...)``, and every
secret value the request carries or the client knows, wherever it appears in a
body (a server echoing the key it refused). Requests match on method and URL
(compared with secrets redacted, so a different key in CI still matches), and
on the body with ``match_body=True``.
Identical requests play their recorded answers in order; the last one repeats.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar, cast

import httpx

from .._clock import SYSTEM_CLOCK
from .._exceptions import ConfigurationError
from .._flow import Flow, Read, Send, adrive, drive
from .._redact import REDACTED, Redactor

__all__ = ["Cassette", "CassetteTransport", "RecordMode"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)

RecordMode: TypeAlias = Literal["replay", "once", "record", "append"]
_MODES = ("replay", "once", "record", "append")
_FORMAT_VERSION = 1
# Headers describing the wire encoding: the file stores the decoded body.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _encode_body(body: bytes) -> dict[str, str]:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(body).decode("ascii")}


def _decode_body(stored: dict[str, str]) -> bytes:
    if "base64" in stored:
        return base64.b64decode(stored["base64"])
    return stored.get("text", "").encode("utf-8")


@dataclass(frozen=True)
class _Interaction:
    method: str
    url: str  # redacted
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                "body": _encode_body(self.request_body),
            },
            "response": {
                "status": self.status,
                "headers": [list(pair) for pair in self.headers],
                "body": _encode_body(self.body),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Interaction:
        request, response = data["request"], data["response"]
        return cls(
            method=request["method"],
            url=request["url"],
            request_headers=dict(request.get("headers", {})),
            request_body=_decode_body(request.get("body", {})),
            status=int(response["status"]),
            headers=[(str(k), str(v)) for k, v in response.get("headers", [])],
            body=_decode_body(response.get("body", {})),
        )

    def response(self, request: httpx.Request) -> httpx.Response:
        # A redacted header is left out: a cookie called "[REDACTED]" would only mislead.
        headers = [(name, value) for name, value in self.headers if value != REDACTED]
        return httpx.Response(self.status, headers=headers, content=self.body, request=request)


class Cassette:
    """A file of recorded HTTP exchanges, and the transport that plays or records them.

    Args:
        path: the JSON file.
        mode: ``"replay"``, ``"once"`` (default), ``"record"`` or ``"append"`` (module docs).
        match_body: requests must also have the recorded body to match.
        redact_headers: more header names to hide, besides the usual credentials.
        redact_params: more query parameter names to hide.

    Examples:
        >>> import tempfile, buttress
        >>> from buttress.testing import DemoServer
        >>> path = Path(tempfile.mkdtemp()) / "users.json"
        >>> with DemoServer() as server:
        ...     cassette = Cassette(path, mode="record")
        ...     with buttress.Client(base_url=server.url, transport=cassette.transport()) as c:
        ...         recorded = c.get("/users/1", params={"api_key": "s3cret"}).json()["name"]
        >>> "s3cret" in path.read_text()
        False
        >>> replay = Cassette(path, mode="replay")
        >>> with buttress.Client(base_url=server.url, transport=replay.transport()) as c:
        ...     c.get("/users/1", params={"api_key": "other"}).json()["name"] == recorded
        True
    """

    def __init__(
        self,
        path: str | Path,
        *,
        mode: RecordMode = "once",
        match_body: bool = False,
        redact_headers: Iterable[str] = (),
        redact_params: Iterable[str] = (),
    ) -> None:
        if mode not in _MODES:
            raise ConfigurationError(f"unknown cassette mode {mode!r}; use one of {_MODES}")
        self.path = Path(path)
        if mode == "once":
            mode = "replay" if self.path.exists() else "record"
        self.mode: RecordMode = mode
        """The effective mode (``"once"`` has become ``"replay"`` or ``"record"``)."""
        self.match_body = match_body
        self._redactor = Redactor(headers=redact_headers, params=redact_params)
        self._lock = threading.Lock()
        self._interactions: list[_Interaction] = []
        self._played: dict[int, int] = {}  # interaction index -> times played
        if mode == "record":  # a new file now: a test that sends nothing replays nothing
            self._save()
        elif self.path.exists():
            self._load()
        elif mode == "replay":
            raise ConfigurationError(
                f"cassette {self.path} does not exist; record it first (mode 'once' or 'record'; "
                "under pytest: --buttress-record-mode=once)"
            )

    def __len__(self) -> int:
        return len(self._interactions)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._interactions = [_Interaction.from_json(item) for item in data["interactions"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"cannot read cassette {self.path}: {exc}") from exc

    def _save(self) -> None:
        data = {
            "version": _FORMAT_VERSION,
            "interactions": [item.to_json() for item in self._interactions],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")

    def _vocabulary(self, request: httpx.Request) -> Redactor:
        return Redactor.for_request(request, self._redactor)

    def _url(self, request: httpx.Request) -> str:
        return self._vocabulary(request).url(request.url)

    def _body(self, request: httpx.Request, body: bytes) -> bytes:
        """``body`` as it may be written: every secret of ``request``'s vocabulary hidden."""
        vocabulary = self._vocabulary(request)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:  # binary: only exact secret values can be found in it
            for secret in vocabulary.secrets_of(request):
                body = body.replace(secret.encode(), REDACTED.encode())
            return body
        return vocabulary.scrub(text, request, excerpt=False).encode("utf-8")

    def _matches(self, item: _Interaction, request: httpx.Request, url: str) -> bool:
        return (
            item.method == request.method
            and item.url == url
            and (not self.match_body or item.request_body == self._body(request, request.content))
        )

    def play(self, request: httpx.Request) -> httpx.Response | None:
        """The recorded answer to ``request``; ``None`` when it must be recorded.

        In ``"replay"`` mode an unknown request raises :class:`~buttress.ConfigurationError`.
        """
        if self.mode == "record":
            return None
        url = self._url(request)
        with self._lock:
            found = [
                index
                for index, item in enumerate(self._interactions)
                if self._matches(item, request, url)
            ]
            unplayed = [index for index in found if index not in self._played]
            chosen = unplayed[0] if unplayed else (found[-1] if found else None)
            if chosen is not None:
                self._played[chosen] = self._played.get(chosen, 0) + 1
                return self._interactions[chosen].response(request)
        if self.mode == "append":
            return None
        known = sorted({f"{item.method} {item.url}" for item in self._interactions})
        raise ConfigurationError(
            f"{request.method} {url} is not in cassette {self.path} (mode 'replay'); "
            f"it holds: {', '.join(known) or 'nothing'}. Record it again to add the request."
        )

    def record(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """Add an exchange (``response``'s body read) and write the file, secrets redacted.

        Returns the response as replay will give it: the decoded body, no wire headers.
        """
        vocabulary = self._vocabulary(request)
        secrets = vocabulary.secrets_of(request)
        headers = [  # pairs, not a dict: a response may set several cookies
            (name, vocabulary.header_value(name, value, secrets))
            for name, value in response.headers.multi_items()
            if name.lower() not in _WIRE_HEADERS
        ]
        item = _Interaction(
            method=request.method,
            url=vocabulary.url(request.url),
            request_headers=vocabulary.headers(request.headers.multi_items(), request),
            request_body=self._body(request, request.content),
            status=response.status_code,
            headers=headers,
            body=self._body(request, response.content),
        )
        with self._lock:
            self._interactions.append(item)
            self._played[len(self._interactions) - 1] = 1
            self._save()
        return item.response(request)

    def transport(
        self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    ) -> CassetteTransport:
        """A sync and async transport playing (or recording through ``inner``) this cassette.

        Examples:
            >>> import tempfile
            >>> path = Path(tempfile.mkdtemp()) / "empty.json"
            >>> Cassette(path, mode="record").transport()
            CassetteTransport(mode='record', interactions=0)
        """
        return CassetteTransport(self, inner)


class CassetteTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Plays ``cassette``; records through ``inner`` (default: a new httpx network transport).

    Examples:
        >>> import tempfile
        >>> cassette = Cassette(Path(tempfile.mkdtemp()) / "c.json", mode="record")
        >>> CassetteTransport(cassette, httpx.HTTPTransport()).cassette is cassette
        True
    """

    def __init__(
        self,
        cassette: Cassette,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cassette = cassette
        self._inner = inner
        self._sync: httpx.BaseTransport | None = None
        self._async: httpx.AsyncBaseTransport | None = None

    def _flow(self, request: httpx.Request) -> Flow:
        recorded = self.cassette.play(request)
        if recorded is not None:
            return recorded
        response = yield Send(request)
        if isinstance(response, httpx.Response):
            response = yield Read(response)
        if isinstance(response, Exception):
            raise response
        return self.cassette.record(request, cast(httpx.Response, response))

    def _sync_inner(self) -> httpx.BaseTransport:
        if self._sync is None:
            self._sync = self._inner_as(httpx.BaseTransport, httpx.HTTPTransport, "async-only")
        return self._sync

    def _async_inner(self) -> httpx.AsyncBaseTransport:
        if self._async is None:
            self._async = self._inner_as(
                httpx.AsyncBaseTransport, httpx.AsyncHTTPTransport, "sync-only"
            )
        return self._async

    def _inner_as(self, kind: type[_T], default: Callable[[], _T], otherwise: str) -> _T:
        """The inner transport given (which must be a ``kind``), or a ``default()`` one."""
        inner = self._inner if self._inner is not None else default()
        if not isinstance(inner, kind):
            raise ConfigurationError(f"this cassette's inner transport is {otherwise}")
        return inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return drive(self._flow(request), self._sync_inner(), SYSTEM_CLOCK)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await adrive(self._flow(request), self._async_inner(), SYSTEM_CLOCK)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()

    def __repr__(self) -> str:
        return f"CassetteTransport(mode={self.cassette.mode!r}, interactions={len(self.cassette)})"
