"""How an outcome is classified: the one module every layer asks.

- transient, worth another attempt (the retry layer): :func:`is_transient`,
  :func:`retry_reason`, :func:`is_connect_failure`;
- a failure of the service (the circuit breaker): :func:`is_breaker_failure`;
- a failure a stored response may stand in for (the cache's ``stale-if-error``):
  :func:`allows_stale`;
- an error status to raise (the facade, the only one that raises for status):
  :func:`is_error_status`.

A transient failure is one the server or the network caused and that may go
away: a refused or reset connection, a broken HTTP exchange, a connect, read or
write timeout. The caller's own mistakes never are: an invalid URL, an
unsupported scheme, a full connection pool on our side (``PoolTimeout``), a
local protocol misuse, a validation error, or an open circuit. Nor is a
certificate the client refuses to trust: asking again gets the same certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from .._exceptions import map_exception
from .._extensions import CLIENT_RATE_LIMITED

if TYPE_CHECKING:
    from .breaker import CircuitBreakerConfig

__all__ = [
    "TRANSIENT_ERRORS",
    "EarlyStop",
    "allows_stale",
    "is_breaker_failure",
    "is_connect_failure",
    "is_error_status",
    "is_transient",
    "refused_by_client",
    "retry_reason",
]

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.NetworkError,  # ConnectError, ReadError, WriteError, CloseError
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
)
"""Exception classes that mean "the exchange failed; trying again may work"."""


def is_transient(error: BaseException) -> bool:
    """True when ``error`` is a network-side failure worth retrying or counting.

    Examples:
        >>> is_transient(httpx.ConnectError("refused"))
        True
        >>> is_transient(httpx.PoolTimeout("pool full"))   # our own limit
        False
        >>> is_transient(httpx.UnsupportedProtocol("ftp"))
        False
    """
    return isinstance(error, TRANSIENT_ERRORS) and not _refused_certificate(error)


def _refused_certificate(error: BaseException) -> bool:
    """True when the TLS handshake failed because we do not trust the server's certificate."""
    seen: BaseException | None = error
    for _ in range(8):  # httpx and httpcore wrap the ssl error a few levels down
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_connect_failure(error: BaseException) -> bool:
    """True when the request never reached the server (so any method may be re-sent).

    Examples:
        >>> is_connect_failure(httpx.ConnectTimeout("slow handshake"))
        True
        >>> is_connect_failure(httpx.ReadTimeout("no answer"))
        False
    """
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)


def refused_by_client(response: httpx.Response) -> bool:
    """Is ``response`` the rate limiter's own 429 (``on_limit="return"``), never sent?

    The caller asked for it instead of a wait: it is not retried, and tells a
    breaker nothing about the server.

    Examples:
        >>> refused_by_client(httpx.Response(429, extensions={CLIENT_RATE_LIMITED: True}))
        True
        >>> refused_by_client(httpx.Response(429))
        False
    """
    return bool(response.extensions.get(CLIENT_RATE_LIMITED))


def retry_reason(
    outcome: httpx.Response | Exception, retry_statuses: Collection[int]
) -> str | None:
    """Why ``outcome`` is worth another attempt (for logs and notes), or ``None`` when it is not.

    Examples:
        >>> retry_reason(httpx.Response(503), {503})
        '503 Service Unavailable'
        >>> retry_reason(httpx.Response(404), {503}) is None
        True
        >>> retry_reason(httpx.ReadTimeout("no answer"), {503})
        'ReadTimeout: no answer'
    """
    if isinstance(outcome, httpx.Response):
        if outcome.status_code in retry_statuses and not refused_by_client(outcome):
            return f"{outcome.status_code} {outcome.reason_phrase}".strip()
        return None
    if is_transient(outcome):
        return f"{type(outcome).__name__}: {outcome}" if str(outcome) else type(outcome).__name__
    return None


def is_breaker_failure(
    config: CircuitBreakerConfig, outcome: httpx.Response | Exception
) -> bool | None:
    """True: the call failed; False: it succeeded; None: it does not count either way.

    Examples:
        >>> from buttress import CircuitBreakerConfig
        >>> config = CircuitBreakerConfig()
        >>> [is_breaker_failure(config, httpx.Response(code)) for code in (503, 404)]
        [True, False]
        >>> is_breaker_failure(config, httpx.InvalidURL("no host")) is None
        True
    """
    if isinstance(outcome, httpx.Response):
        if refused_by_client(outcome):
            return None
        return outcome.status_code in config.included_status_codes
    if config.excluded_exceptions and _is_any(outcome, config.excluded_exceptions):
        return None
    return True if is_transient(outcome) else None


def _is_any(outcome: Exception, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``outcome`` is one of ``kinds``, as raised: a caller names ours
    (``buttress.ReadTimeoutError``) as often as httpx's, and the layers see httpx's."""
    return isinstance(outcome, kinds) or isinstance(map_exception(outcome), kinds)


def allows_stale(outcome: httpx.Response | Exception) -> bool:
    """True when the origin failed so that a stale stored response may answer (RFC 5861 4).

    Examples:
        >>> allows_stale(httpx.Response(503)), allows_stale(httpx.Response(404))
        (True, False)
        >>> allows_stale(httpx.ConnectError("refused"))
        True
    """
    if isinstance(outcome, httpx.Response):
        return outcome.status_code >= 500
    return isinstance(outcome, httpx.TransportError)


def is_error_status(status_code: int, expected: Collection[int] = ()) -> bool:
    """True when a response with ``status_code`` raises, unless the caller ``expected`` it.

    Examples:
        >>> is_error_status(404), is_error_status(404, expected={404}), is_error_status(304)
        (True, False, False)
    """
    return status_code >= 400 and status_code not in expected


@dataclass(frozen=True, slots=True)
class EarlyStop:
    """Why the retry layer handed back a retryable error status without trying again.

    It travels on the response (extension ``buttress.retry_stop``) to whoever
    raises for the status, which adds ``reason`` as a note and ``retry_after``
    (the server's ``Retry-After``) to the error.

    Examples:
        >>> EarlyStop("not retried: the request body is a stream").retry_after is None
        True
    """

    reason: str
    retry_after: float | None = None
