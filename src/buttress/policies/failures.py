"""What counts as a transient failure: one classification shared by retry and breaker.

A transient failure is one the server or the network caused and that may go
away: a refused or reset connection, a broken HTTP exchange, a connect, read or
write timeout. The caller's own mistakes never are: an invalid URL, an
unsupported scheme, a full connection pool on our side (``PoolTimeout``), a
local protocol misuse, a validation error, or an open circuit. Nor is a
certificate the client refuses to trust: asking again gets the same certificate.
"""

from __future__ import annotations

import ssl

import httpx

__all__ = ["TRANSIENT_ERRORS", "is_connect_failure", "is_transient"]

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
