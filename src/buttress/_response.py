"""The response the facade returns, and turning error statuses into exceptions."""

from __future__ import annotations

import codecs
import json as jsonlib
import math
import time
from collections.abc import AsyncIterator, Collection, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx

from ._exceptions import (
    InvalidJSONError,
    describe,
    map_exception,
    scrub,
    status_error_class,
)
from ._extensions import (
    ATTEMPTS_KEY,
    CACHE_EXTENSION,
    CLIENT_RATE_LIMITED,
    RATE_LIMIT_INFO,
    RETRY_STOP_KEY,
)
from .policies.outcomes import EarlyStop, is_error_status

if TYPE_CHECKING:
    from .policies.headers import RateLimitInfo
    from .streaming import ServerSentEvent

__all__ = [
    "ErrorParser",
    "Response",
    "as_response",
    "default_error_parser",
    "detect_encoding",
    "limited_response",
    "raise_for_status",
]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(content: bytes, default: str = "utf-8") -> str:
    """The encoding of a body whose headers name none: BOM, NUL pattern, else ``default``.

    A byte-order mark decides first; then the pattern of NUL bytes in the first
    four bytes, which tells UTF-16 and UTF-32 apart for text that starts with
    ASCII (every JSON document does, RFC 8259); ``default`` otherwise.

    Examples:
        >>> detect_encoding('{"a": 1}'.encode("utf-16-le"))
        'utf-16-le'
        >>> detect_encoding(b'{"a": 1}')
        'utf-8'
    """
    for bom, name in _BOMS:
        if content.startswith(bom):
            return name
    head = content[:4]
    if len(head) == 4:
        nuls = tuple(b == 0 for b in head)
        patterns: dict[tuple[bool, ...], str] = {
            (True, True, True, False): "utf-32-be",
            (False, True, True, True): "utf-32-le",
            (True, False, True, False): "utf-16-be",
            (False, True, False, True): "utf-16-le",
        }
        return patterns.get(nuls, default)
    return default


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _is_json_type(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


"""Extension key under which the rate-limit layer leaves the parsed :class:`RateLimitInfo`."""


class ErrorParser(Protocol):
    """Reads an API's error body into an exception message and ``details``.

    Return a message, ``(message, details)``, or ``None`` when the body says
    nothing useful. Exceptions inside a parser are ignored (the status error is
    raised with the default message).

    Examples:
        >>> def parse(response: httpx.Response) -> tuple[str, Any] | None:
        ...     fault = response.json()["fault"]
        ...     return fault["text"], fault.get("code")
        >>> from buttress import Client
        >>> client = Client(base_url="https://api.example.com", error_parser=parse)
        >>> client.close()
    """

    def __call__(self, response: httpx.Response, /) -> str | tuple[str, Any] | None: ...


class Response(httpx.Response):
    """An ``httpx.Response`` with buttress's additions.

    Every facade call returns one; it is an ``httpx.Response`` in every other way.

    Examples:
        >>> response = Response(200, json={"id": 1})
        >>> (response.ok, response.json())
        (True, {'id': 1})
    """

    @property
    def from_cache(self) -> bool:
        """True when the cache layer answered from storage (fresh, revalidated or stale).

        Examples:
            >>> Response(200).from_cache
            False
        """
        return bool(getattr(self.extensions.get(CACHE_EXTENSION), "from_cache", False))

    @property
    def cache_age(self) -> float | None:
        """Seconds since the origin made a cached response (its ``Age`` included), else ``None``.

        Examples:
            >>> Response(200).cache_age is None
            True
        """
        return getattr(self.extensions.get(CACHE_EXTENSION), "age", None)

    @property
    def encoding(self) -> str | None:
        """The charset for :attr:`text`: the Content-Type's, then detected, then the default.

        The default is the client's ``default_encoding`` (``"utf-8"``), as in
        httpx; a callable one is given the body and names the encoding instead
        of detection. Detection (:func:`detect_encoding`) needs the body, so
        before it is read a response without a declared charset decodes with
        the default.

        Examples:
            >>> Response(200, content="é".encode("latin-1"),
            ...          headers={"content-type": "text/plain; charset=latin-1"}).text
            'é'
        """
        if hasattr(self, "_encoding"):
            return str(self._encoding)
        declared = self.charset_encoding
        if declared is not None and _known_codec(declared):
            self._encoding = declared
        elif hasattr(self, "_content"):
            default = self.default_encoding
            self._encoding = (
                default(self._content)
                if callable(default)
                else detect_encoding(self._content, default)
            )
        else:
            return self.default_encoding if isinstance(self.default_encoding, str) else "utf-8"
        return str(self._encoding)

    @encoding.setter
    def encoding(self, value: str) -> None:
        if hasattr(self, "_text"):
            raise ValueError("Setting encoding after `text` has been accessed is not allowed.")
        self._encoding = value

    def parsed(self) -> Any:
        """The body decoded by its Content-Type: JSON, text, or the raw bytes.

        JSON media types (``application/json``, ``*/*+json``) give the decoded
        value (:class:`InvalidJSONError` if it is not JSON), ``text/*`` and
        XML/form types give ``str``, anything else (or an empty body) ``bytes``.
        Without a Content-Type, a body that is valid JSON is decoded, else returned
        as text.

        Examples:
            >>> Response(200, json={"id": 1}).parsed()
            {'id': 1}
            >>> Response(200, text="<p>hi</p>", headers={"content-type": "text/html"}).parsed()
            '<p>hi</p>'
        """
        content_type = self.headers.get("content-type", "")
        if _is_json_type(content_type):
            return self.json() if self.content.strip() else None
        media = content_type.partition(";")[0].strip().lower()
        if media.startswith("text/") or media.endswith(("xml", "x-www-form-urlencoded")):
            return self.text
        if media or not self.content:
            return self.content
        try:
            return jsonlib.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            return self.text

    def iter_sse(self, *, max_event_size: int | None = 1 << 20) -> Iterator[ServerSentEvent]:
        """The server-sent events of a streamed ``text/event-stream`` body (WHATWG rules).

        A line or an event's data longer than ``max_event_size`` bytes raises
        :class:`~buttress.ResponseTooLargeError`. See :func:`buttress.streaming.iter_sse`.

        Examples:
            >>> from buttress import Client
            >>> def ticks(client: Client) -> list[str]:
            ...     with client.stream("GET", "/events", params={"count": 2}) as response:
            ...         return [event.data for event in response.iter_sse()]
        """
        from .streaming import iter_sse

        return iter_sse(self, max_event_size=max_event_size)

    def aiter_sse(self, *, max_event_size: int | None = 1 << 20) -> AsyncIterator[ServerSentEvent]:
        """The async twin of :meth:`iter_sse`.

        Examples:
            >>> from buttress import AsyncClient
            >>> async def ticks(client: AsyncClient) -> list[str]:
            ...     async with client.stream("GET", "/events", params={"count": 2}) as response:
            ...         return [event.data async for event in response.aiter_sse()]
        """
        from .streaming import aiter_sse

        return aiter_sse(self, max_event_size=max_event_size)

    @property
    def ok(self) -> bool:
        """True for 1xx, 2xx and 3xx statuses: the request did not fail (requests' ``ok``)."""
        return self.status_code < 400

    @property
    def attempts(self) -> int:
        """How many attempts the retry layer made for this response (1: no retry).

        Examples:
            >>> Response(200).attempts
            1
        """
        return int(self.extensions.get(ATTEMPTS_KEY, 1))

    @cached_property
    def rate_limit(self) -> RateLimitInfo | None:
        """The server's rate-limit figures from this response's headers, or ``None``.

        Read from ``RateLimit``/``RateLimit-Policy``, ``RateLimit-*`` or
        ``X-RateLimit-*`` (GitHub's included) when first asked for.

        Examples:
            >>> headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}
            >>> Response(200, headers=headers).rate_limit.remaining
            59
            >>> Response(200).rate_limit is None
            True
        """
        from .policies.headers import RateLimitInfo, parse_rate_limit

        found = self.extensions.get(RATE_LIMIT_INFO)
        if isinstance(found, RateLimitInfo):
            return found
        return parse_rate_limit(self.headers, time.time())

    @property
    def limited_by_client(self) -> bool:
        """True for the synthetic 429 a client-side rate limit returns (nothing was sent).

        Examples:
            >>> request = httpx.Request("GET", "https://api.example.com/x")
            >>> limited_response(request, retry_after=0.5).limited_by_client
            True
        """
        return bool(self.extensions.get(CLIENT_RATE_LIMITED))

    def json(self, **kwargs: Any) -> Any:
        """Decode the body as JSON.

        Raises:
            InvalidJSONError: the body is not JSON (or is JSON no parser should
                accept: nested too deeply, numbers with thousands of digits); the
                message shows the status, content type, position and a snippet.
        """
        try:
            try:
                return jsonlib.loads(self.content, **kwargs)
            except UnicodeDecodeError as exc:  # not UTF-8/16/32: only a declared charset helps
                return jsonlib.loads(_declared_text(self, exc), **kwargs)
        except jsonlib.JSONDecodeError as exc:
            error = exc
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[... nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            error = jsonlib.JSONDecodeError(reason, _text_of(self)[:100], 0)
        raise InvalidJSONError(
            error,
            status_code=self.status_code,
            content_type=self.headers.get("content-type"),
            request=self._request,
        ) from error

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Iterate over the decoded body; a body that fails to decode raises ``DecodingError``."""
        try:
            yield from super().iter_bytes(chunk_size)
        except Exception as exc:  # the content decoders (gzip, br, ...) raise httpx's errors
            mapped = map_exception(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The async twin of :meth:`iter_bytes`."""
        try:
            async for chunk in super().aiter_bytes(chunk_size):
                yield chunk
        except Exception as exc:
            mapped = map_exception(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    def raise_for_status(self) -> Response:
        """Raise the matching buttress exception for a 4xx or 5xx status; return self otherwise.

        Examples:
            >>> import buttress
            >>> request = httpx.Request("GET", "https://api.example.com/x")
            >>> try:
            ...     Response(404, request=request).raise_for_status()
            ... except buttress.NotFoundError as e:
            ...     print(e.status_code)
            404
        """
        raise_for_status(self)
        return self


def as_response(response: httpx.Response) -> Response:
    """``response`` as a buttress :class:`Response`: the same object, its class changed.

    The one place an ``httpx.Response`` becomes ours; nothing is copied, so a
    stream being read stays where it is.

    Examples:
        >>> response = as_response(httpx.Response(204))
        >>> type(response).__name__, response.status_code
        ('Response', 204)
    """
    response.__class__ = Response
    return cast(Response, response)


def limited_response(request: httpx.Request, retry_after: float) -> Response:
    """The synthetic 429 a client-side rate limit answers with instead of sending ``request``.

    It carries ``Retry-After`` (whole seconds, rounded up) and is marked so that
    :attr:`Response.limited_by_client` is true (``extensions`` key
    ``"buttress.client_rate_limited"`` for plain httpx users).

    Examples:
        >>> request = httpx.Request("GET", "https://api.example.com/x")
        >>> response = limited_response(request, retry_after=1.2)
        >>> response.status_code, response.headers["Retry-After"]
        (429, '2')
    """
    return Response(
        429,
        headers={"Retry-After": str(math.ceil(retry_after))},
        json={"error": {"message": "client-side rate limit reached; nothing was sent"}},
        request=request,
        extensions={CLIENT_RATE_LIMITED: True},
    )


_JSON_CODECS = frozenset(
    {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
)
"""What ``json.loads`` reads bytes in (by codecs' spelling): declaring one adds nothing."""


def _declared_text(response: httpx.Response, undecodable: UnicodeDecodeError) -> str:
    """The body in the charset its Content-Type declares, when that is not UTF-8/16/32.

    ``json.loads`` (so ``httpx.Response.json``) reads UTF-8, UTF-16 and UTF-32; a body
    in none of them raises ``JSONDecodeError`` here unless another charset is declared
    and decodes it strictly: no charset is guessed and no byte replaced.
    """
    declared = response.charset_encoding
    codec = codecs.lookup(declared).name if declared and _known_codec(declared) else None
    if codec is not None and codec not in _JSON_CODECS:
        try:
            return response.content.decode(codec)
        except UnicodeDecodeError as exc:
            undecodable = exc
    encoding, start = undecodable.encoding, undecodable.start
    raise jsonlib.JSONDecodeError(
        f"the body is not {encoding} ({undecodable.reason} at byte {start})"
        + ("" if declared else " and its Content-Type declares no charset"),
        response.content.decode(encoding, "replace"),
        len(response.content[:start].decode(encoding, "replace")),
    )


def _text_of(response: httpx.Response) -> str:
    """The body as text; a body its declared charset cannot decode is read as UTF-8."""
    try:
        return response.text
    except UnicodeError:  # e.g. charset=utf-16 on a body without a byte order mark
        return response.content.decode("utf-8", "replace")


_MESSAGE_KEYS = ("error", "message", "detail", "error_description", "title", "errors", "msg")


def _message_from(body: Any) -> str | None:
    """Find the human message in the usual error body shapes.

    Depth first, in the order of ``_MESSAGE_KEYS``, without recursion: a body
    nested thousands deep (which some Pythons' json decodes) must not overflow.
    """
    pending = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if item:
                return item
        elif isinstance(item, list):
            if item:
                pending.append(item[0])
        elif isinstance(item, dict):
            pending.extend(item[key] for key in reversed(_MESSAGE_KEYS) if key in item)
    return None


def default_error_parser(response: httpx.Response) -> tuple[str, Any] | None:
    """Read the usual error bodies: ``{"error": {"message"}}``, ``{"message"}``, ``{"detail"}``.

    Returns the message and the decoded body as details, the start of a text body,
    or ``None`` for an empty body.

    Examples:
        >>> default_error_parser(httpx.Response(400, json={"error": {"message": "bad id"}}))
        ('bad id', {'error': {'message': 'bad id'}})
    """
    try:
        body = jsonlib.loads(response.content)
    except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, or nested too deeply
        text = _text_of(response).strip()
        return (text[:200], None) if text else None
    message = _message_from(body)
    return (message[:500] if message else response.reason_phrase, body)


def raise_for_status(
    response: httpx.Response,
    *,
    error_parser: ErrorParser = default_error_parser,
    expected: Collection[int] = (),
    now: float | None = None,
) -> None:
    """Raise the buttress exception for ``response``'s error status, unless it is ``expected``.

    The body must have been read. The message quotes what ``error_parser``
    found in the body, scrubbed of every secret the request's vocabulary knows
    (servers echo the key they refused). When the retry layer stopped early on
    this status, the error carries why as a note, and the wait it was asked for.
    """
    status = response.status_code
    if not is_error_status(status, expected):
        return
    parsed = None
    try:
        parsed = error_parser(response)
    except Exception:  # a broken parser must not hide the real error
        parsed = None
    message, details = (parsed, None) if isinstance(parsed, str) else (parsed or ("", None))
    text = f"{status} {response.reason_phrase} for {describe(response.request)}"
    if message:
        text = f"{text}: {scrub(response.request, message)}"
    from .policies.headers import asked_wait

    retry_after = asked_wait(response, time.time() if now is None else now)
    stop = response.extensions.get(RETRY_STOP_KEY)
    if isinstance(stop, EarlyStop) and stop.retry_after is not None:
        retry_after = stop.retry_after  # as the retry layer read it, on its clock
    error = status_error_class(status)(
        text,
        request=response.request,
        response=response,
        details=details,
        retry_after=retry_after,
    )
    if isinstance(stop, EarlyStop) and stop.reason:
        note = f"buttress: {stop.reason}"
        error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]  # PEP 678 (3.10 too)
    raise error
