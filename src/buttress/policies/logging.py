"""Log records for HTTP requests: levels, redaction, bodies, and a JSON formatter.

Shared by the logging layer (:mod:`buttress.transports.logging`) and
:class:`~buttress.LoggingMiddleware`, so both redact and format alike.

The logging layer writes to ``buttress.request`` (one record per logical
request) and ``buttress.attempt`` (DEBUG, one per network attempt);
:class:`~buttress.LoggingMiddleware` to ``buttress.middleware``. The table of
every buttress logger and level is in the docs (Logging, request ids and
tracing). A failure the caller gets as an exception is recorded at INFO at
most: the caller decides how bad it is.

Every record of a request has ``request_id`` (and ``method``, ``url``, ...) as
``extra`` fields. Nothing is formatted when the level is disabled.

httpx, httpcore and hpack log on their own loggers (httpx prints every URL at
INFO, query string included). When buttress logging is on, a
:class:`RedactingFilter` is attached to those loggers once per process, so
their records are scrubbed with the vocabulary of the request being sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import httpx
from pydantic import Field, field_validator

from .._config import AnyCollection, FrozenConfig
from .._redact import Redactor

__all__ = [
    "THIRD_PARTY_LOGGERS",
    "BodySample",
    "JSONFormatter",
    "LoggingConfig",
    "RedactingFilter",
    "RequestLogger",
    "redact_third_party_records",
]

_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_NOTICE_HEADERS = (b"deprecation", b"sunset")  # an endpoint going away, lowercase


class LoggingConfig(FrozenConfig):
    """What the logging layer logs and what it hides.

    Attributes:
        enabled: write records at all (``False``: request ids and tracing only).
        slow_threshold: seconds after which a response is logged at WARNING
            (``None``: never).
        redact_headers: header names to hide besides the defaults
            (Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-API-Key, ...).
        redact_params: query parameters (and body fields) to hide besides the
            defaults (api_key, key, token, access_token, signature, ...).
        redact_patterns: regular expressions; matches are hidden in every
            logged text (URLs, header values, bodies, error messages).

    The ``redact_*`` names are the client's own additions to the vocabulary of
    secrets: a client hides them everywhere it writes (log records, exception
    messages, cassettes, span attributes), not only in its logs, and even
    with ``enabled=False``.
        log_bodies: log request and response bodies at DEBUG (opt-in).
        body_limit: at most this many bytes of each body are logged.

    Examples:
        >>> LoggingConfig(slow_threshold=2, redact_headers=["X-Tenant-Key"]).slow_threshold
        2.0
    """

    enabled: bool = True
    slow_threshold: float | None = Field(default=5.0, gt=0)
    redact_headers: AnyCollection[tuple[str, ...]] = ()
    redact_params: AnyCollection[tuple[str, ...]] = ()
    redact_patterns: AnyCollection[tuple[str, ...]] = ()
    log_bodies: bool = False
    body_limit: int = Field(default=2048, ge=0)

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for index, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:  # the pattern is not quoted: it may hold a secret
                raise ValueError(f"pattern {index} is not a valid regex: {exc}") from None
        return patterns

    def redactor(self) -> Redactor:
        """The :class:`~buttress._redact.Redactor` these settings describe.

        Examples:
            >>> LoggingConfig(redact_params=["sig"]).redactor().url("https://a.test/?sig=x")
            'https://a.test/?sig=[REDACTED]'
        """
        return _redactor(self.redact_headers, self.redact_params, self.redact_patterns)


@lru_cache(maxsize=64)
def _redactor(
    headers: tuple[str, ...], params: tuple[str, ...], patterns: tuple[str, ...]
) -> Redactor:
    """One redactor per vocabulary, shared: a redactor never changes what it hides. A client's
    vocabulary and its logging layer's are then one object, so each record's is found at once."""
    return Redactor(headers, params, patterns)


class RequestLogger:
    """Writes the records of requests to one logger, redacted (see the module docs).

    Examples:
        >>> log = RequestLogger(logging.getLogger("buttress.request"), LoggingConfig())
        >>> request = httpx.Request("GET", "https://api.example.com/users?token=t0k3n")
        >>> log.extra(request, "r-1")["url"]
        'https://api.example.com/users?token=[REDACTED]'
    """

    __slots__ = ("_lock", "_noticed", "config", "logger", "redactor")

    def __init__(self, logger: logging.Logger, config: LoggingConfig) -> None:
        self.logger = logger
        self.config = config
        self.redactor = config.redactor()
        self._lock = threading.Lock()
        self._noticed: set[tuple[str, str, str]] = set()
        if config.enabled:
            redact_third_party_records()

    def vocabulary(self, request: httpx.Request) -> Redactor:
        """What to hide in records about ``request``: this config's names and the request's."""
        return Redactor.for_request(request, self.redactor)

    def enabled(self, level: int) -> bool:
        """True when a record at ``level`` would be handled (cheap; check first)."""
        return self.config.enabled and self.logger.isEnabledFor(level)

    def extra(
        self, request: httpx.Request, request_id: str | None, **fields: Any
    ) -> dict[str, Any]:
        """The ``extra`` fields of a record about ``request``."""
        return {
            "request_id": request_id,
            "method": request.method,
            "url": self.vocabulary(request).url(request.url),
            **fields,
        }

    def started(self, request: httpx.Request, request_id: str | None) -> None:
        """DEBUG: the request about to be sent, headers redacted, body sample if enabled."""
        if not self.enabled(logging.DEBUG):
            return
        headers = self.vocabulary(request).headers(request.headers)
        extra = self.extra(request, request_id, headers=headers)
        body = self._body(request, request)
        if body is not None:
            extra["body"] = body
        self.logger.debug("%s %s sending", request.method, extra["url"], extra=extra)

    def finished(
        self,
        request: httpx.Request,
        response: httpx.Response,
        seconds: float,
        request_id: str | None,
        level: int = logging.INFO,
        *,
        sample: BodySample | None = None,
        **fields: Any,
    ) -> None:
        """``level`` (INFO) with status and duration, whatever the status; WARNING when
        slow or deprecated.

        At DEBUG the record also has the redacted request and response headers
        (and body samples when enabled: the response's is ``sample`` when given,
        else its body if read). A ``Deprecation`` or ``Sunset`` header is
        reported once per method and path.
        """
        status = response.status_code
        handled = self.enabled(level)  # then a WARNING would be too: levels only go up
        if not handled and (level >= logging.WARNING or not self.enabled(logging.WARNING)):
            return  # no record this call could make would be handled
        slow = self.config.slow_threshold is not None and seconds > self.config.slow_threshold
        notice = self._deprecation(request, response)
        if slow or notice:
            level = max(level, logging.WARNING)
        elif not handled:
            return
        ms = round(seconds * 1000, 3)
        extra = self.extra(request, request_id, status_code=status, duration_ms=ms, **fields)
        if notice:
            extra["deprecation"] = notice
        if self.enabled(logging.DEBUG):
            vocabulary = self.vocabulary(request)
            extra["headers"] = vocabulary.headers(request.headers)
            extra["response_headers"] = vocabulary.headers(response.headers, request)
            body = self._body(request, response, sample)
            if body is not None:
                extra["response_body"] = body
            if sample is not None and sample.failure is not None:  # the body broke off
                extra["error"] = self.scrub(request, sample.failure)
        prefix = "slow response: " if slow else ""
        if notice:
            prefix = f"deprecated endpoint ({notice}): {prefix}"
        self._log(
            level,
            "%s%s %s -> %s %s in %.1f ms",
            prefix,
            request.method,
            extra["url"],
            status,
            response.reason_phrase,
            ms,
            extra=extra,
        )

    def _log(self, level: int, message: str, *args: object, extra: dict[str, Any]) -> None:
        """``self.logger.log(level, message, *args, extra=extra)`` without its stack walk.

        ``Logger.log`` searches the stack for the first frame outside the logging
        module on every record, for the record's file, line and function; that
        frame is always our caller's, so it is taken at once. The record is the same.
        """
        caller = sys._getframe(1)
        code, logger = caller.f_code, self.logger
        record = logger.makeRecord(
            logger.name,
            level,
            code.co_filename,
            caller.f_lineno,
            message,
            args,
            None,
            code.co_name,
            extra,
        )
        logger.handle(record)

    def _deprecation(self, request: httpx.Request, response: httpx.Response) -> str | None:
        """``"Deprecation: ...; Sunset: ..."`` the first time an endpoint says so, else None."""
        headers = response.headers
        for name, _ in headers.raw:  # undecoded: keys() decodes each name, each `in` is a pass
            if name.lower() in _NOTICE_HEADERS:
                break
        else:
            return None
        key = (request.method, request.url.host, request.url.path)
        with self._lock:
            if key in self._noticed:
                return None
            if len(self._noticed) < 4096:  # bounded: a crawler must not grow it forever
                self._noticed.add(key)
        said = [name for name in ("deprecation", "sunset") if name in headers]
        return "; ".join(f"{name.title()}: {headers[name]}" for name in said)

    def failed(
        self,
        request: httpx.Request,
        error: BaseException,
        seconds: float,
        request_id: str | None,
        level: int = logging.INFO,
    ) -> None:
        """``level`` (INFO): the request failed without a response; the message is scrubbed.

        Not ERROR: the caller gets the exception and decides how bad it is.
        """
        if not self.enabled(level):
            return
        ms = round(seconds * 1000, 3)
        message = self.scrub(request, f"{type(error).__name__}: {error}")
        extra = self.extra(request, request_id, duration_ms=ms, error=message)
        self._log(
            level,
            "%s %s failed after %.1f ms: %s",
            request.method,
            extra["url"],
            ms,
            message,
            extra=extra,
        )

    def scrub(self, request: httpx.Request, text: str) -> str:
        """``text`` without the URL's and headers' secrets of ``request``."""
        vocabulary = self.vocabulary(request)
        text = text.replace(str(request.url), vocabulary.url(request.url))
        return vocabulary.scrub(text, request)

    def sampler(self, request: httpx.Request, response: httpx.Response) -> BodySample | None:
        """A :class:`BodySample` to fill as ``response``'s body streams by, if it is to be logged.

        ``None`` when bodies are not logged, and when there is nothing to wait for:
        the body was already read (by a layer beneath, or a cache hit) or has none
        (``HEAD``, 1xx, 204, 304). The body is never read here: whoever reads it
        fills the sample, and the record is written when it ends or is closed.
        """
        if not (self.config.log_bodies and self.enabled(logging.DEBUG)):
            return None
        status = response.status_code
        if request.method == "HEAD" or status < 200 or status in (204, 304):
            return None
        try:
            response.content  # noqa: B018 - only asks whether the body is in memory
        except httpx.ResponseNotRead:
            return BodySample(self.config.body_limit, response.headers)
        return None

    def _sample(self, request: httpx.Request, raw: bytes, more: str | None = None) -> str:
        limit = self.config.body_limit
        text = self.scrub(request, raw[:limit].decode("utf-8", "replace"))  # cut, then scrubbed
        if more is None and len(raw) > limit:
            more = f"{len(raw)} bytes"
        return f"{text}... ({more})" if more else text

    def _body(
        self,
        request: httpx.Request,
        message: httpx.Request | httpx.Response,
        sample: BodySample | None = None,
    ) -> str | None:
        """What to log of ``message``'s body (the request's, or its response's, or ``sample``)."""
        if not self.config.log_bodies:
            return None
        if sample is not None:
            if not sample.size:
                return None
            return self._sample(request, *sample.excerpt())
        try:
            raw = message.content
        except (httpx.RequestNotRead, httpx.ResponseNotRead):
            return "<streaming body>"
        return self._sample(request, raw) if raw else None


class BodySample:
    """The first ``limit`` bytes of a response body as it streams by, and its size so far.

    Filled by whoever reads the body (the logging layer only watches): nothing is
    read for the sample. The bytes are kept as the network sends them and decoded
    (``Content-Encoding``, as httpx decodes them) only when the record is written.
    ``failure`` is the error the body broke off with, if it did.

    Examples:
        >>> sample = BodySample(4, httpx.Headers())
        >>> sample.feed(b"hello"), sample.feed(b" world")
        (None, None)
        >>> sample.excerpt()
        (b'hell', '11 bytes')
    """

    __slots__ = ("_coding", "_head", "_keep", "_limit", "failure", "size")

    def __init__(self, limit: int, headers: httpx.Headers) -> None:
        self._limit = limit
        self._coding = headers.get("content-encoding", "").strip().lower()
        if self._coding == "identity":
            self._coding = ""
        # an encoded body keeps its framing too (a gzip header, block headers)
        self._keep = limit + _FRAMING if self._coding else limit
        self._head = bytearray()
        self.size = 0
        self.failure: str | None = None

    def failed(self, error: BaseException) -> None:
        """The body broke off with ``error`` (the first error is kept)."""
        if self.failure is None:
            self.failure = f"{type(error).__name__}: {error}"

    def feed(self, data: bytes) -> None:
        """Account for a chunk as it goes by (kept while the sample has room)."""
        self.size += len(data)
        room = self._keep - len(self._head)
        if room > 0:
            self._head += data[:room]

    def excerpt(self) -> tuple[bytes, str | None]:
        """The decoded head of the body, and what to say of the rest (``None``: nothing left)."""
        head, limit = bytes(self._head), self._limit
        if not self._coding:
            return head, f"{self.size} bytes" if self.size > limit else None
        decoded = _decoded(head, self._coding)
        if self.size > len(head):  # the decoded size of the rest is not known
            return decoded, f"{self.size} bytes as sent, {self._coding}"
        return decoded, f"{len(decoded)} bytes" if len(decoded) > limit else None


_FRAMING = 64  # raw bytes beyond the limit an encoded body's sample keeps


def _decoded(head: bytes, coding: str) -> bytes:
    """What httpx decodes of ``head``, the start of a ``coding``-encoded body, as far as it goes."""
    headers = {"content-encoding": coding}
    body = httpx.Response(200, headers=headers, stream=httpx.ByteStream(head))
    pieces: list[bytes] = []
    with contextlib.suppress(httpx.DecodingError):  # cut mid-frame: keep what decoded
        pieces.extend(body.iter_bytes())
    return b"".join(pieces)


class JSONFormatter(logging.Formatter):
    """Formats records as one JSON object per line, with every ``extra`` field.

    Examples:
        >>> handler = logging.StreamHandler()
        >>> handler.setFormatter(JSONFormatter())
        >>> record = logging.LogRecord("buttress", logging.INFO, "", 0, "GET %s", ("/x",), None)
        >>> record.request_id = "r-1"
        >>> json.loads(JSONFormatter().format(record))["request_id"]
        'r-1'
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


# -- other libraries' records ------------------------------------------------------------------

THIRD_PARTY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
    "hpack.table",
)
"""The loggers :func:`redact_third_party_records` filters (a logger's filters do not
apply to its children's records, so each is named)."""

_SENDING: ContextVar[httpx.Request | None] = ContextVar("buttress_sending", default=None)


def sending(request: httpx.Request) -> Token[httpx.Request | None]:
    """Mark ``request`` as the one being sent in this thread or task; undo with ``done``."""
    return _SENDING.set(request)


def done(token: Token[httpx.Request | None]) -> None:
    """Undo :func:`sending`."""
    _SENDING.reset(token)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from any library's records.

    Each record's message is formatted, then scrubbed with ``redactor`` plus
    the vocabulary of the request a buttress client is sending in this thread
    or task (its credential values, the names its auth declared): URLs lose
    their secret parameters and passwords, header pairs their sensitive values,
    and known secret values are replaced wherever they appear. Records are
    never dropped.

    buttress attaches one to httpx's, httpcore's and hpack's loggers
    (:data:`THIRD_PARTY_LOGGERS`); attach your own to other loggers or
    handlers, with the names you add (``LoggingConfig(...).redactor()``).

    Examples:
        >>> import logging
        >>> url = "https://a.test/?key=k3y"
        >>> record = logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", (url,), None)
        >>> RedactingFilter().filter(record), record.getMessage()
        (True, 'GET https://a.test/?key=[REDACTED]')
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        request = _SENDING.get()
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it when formatting
            return True
        clean = Redactor.for_request(request, self.redactor).scrub(message, request)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_THIRD_PARTY_FILTER = RedactingFilter()
_THIRD_PARTY_LOCK = threading.Lock()


def redact_third_party_records() -> None:
    """Attach buttress's :class:`RedactingFilter` to :data:`THIRD_PARTY_LOGGERS` (idempotent).

    Called when a client or layer with logging on is built. The filter is
    process-wide and stays: outside a buttress request it hides the default
    secret names only. Remove it with
    ``logging.getLogger(name).removeFilter(...)`` on each of those loggers.

    Examples:
        >>> redact_third_party_records()
        >>> sum(isinstance(f, RedactingFilter) for f in logging.getLogger("httpx").filters)
        1
    """
    with _THIRD_PARTY_LOCK:
        for name in THIRD_PARTY_LOGGERS:
            logger = logging.getLogger(name)
            if _THIRD_PARTY_FILTER not in logger.filters:
                logger.addFilter(_THIRD_PARTY_FILTER)
