"""What the clients' arguments accept, checked before anything is built.

A wrong argument fails at once with a :class:`~buttress.ConfigurationError` naming
it (``Client(retry=...) takes a RetryConfig, True, False or None, not str``), not
with an ``AttributeError`` deep in a layer or a ``TypeError`` from httpx.
"""

from __future__ import annotations

import codecs
import importlib
import os
import ssl
from collections.abc import Callable, Collection, Mapping
from difflib import get_close_matches
from typing import Any

import httpx

from ._config import APIVersion, check_base_url
from ._exceptions import ConfigurationError, _joined

__all__ = ["check_arguments", "unknown_argument"]


def unknown_argument(owner: str, name: str, known: Collection[str]) -> ConfigurationError:
    """The error for a keyword ``owner`` does not take, naming the closest one it does.

    It is a :class:`ConfigurationError` and a ``TypeError`` (what Python raises
    for an unexpected keyword), so either ``except`` catches it.

    Examples:
        >>> error = unknown_argument("Client", "retries", ["retry", "timeout"])
        >>> print(error)
        Client() got an unexpected keyword argument 'retries'; did you mean `retry=`?
        >>> isinstance(error, TypeError)
        True
    """
    close = get_close_matches(name, known, n=1)
    hint = f"; did you mean `{close[0]}=`?" if close else ""
    message = f"{owner}() got an unexpected keyword argument {name!r}{hint}"
    return _joined(ConfigurationError, TypeError)(message)


def _kind(*types: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, types)


def _one_of(module: str, *names: str, also: tuple[type, ...] = ()) -> Callable[[Any], bool]:
    """An instance of ``names`` from ``module`` (or of ``also``).

    The module is imported only to check a value given (a value of its classes
    has imported it already), so that checking costs no layer its lazy import.
    """

    def accepts(value: Any) -> bool:
        if isinstance(value, also):
            return True
        found = importlib.import_module(module, __package__)
        return isinstance(value, tuple(getattr(found, name) for name in names))

    return accepts


def _number(minimum: float, *, integer: bool = True, none: bool = False) -> Callable[[Any], bool]:
    kinds = int if integer else int | float
    return lambda value: (
        (none and value is None)
        or (isinstance(value, kinds) and not isinstance(value, bool) and value >= minimum)
    )


def _parses(convert: Callable[[Any], object]) -> Callable[[Any], bool]:
    return lambda value: convert(value) is not None  # convert's error says what is wrong


def _hooks(value: Any) -> bool:
    unknown = set(value or {}) - {"request", "response"}
    if unknown:
        raise ValueError(f"unknown events {sorted(unknown)}")
    return all(isinstance(functions, list) for functions in (value or {}).values())


def _transport(value: Any) -> bool:
    return hasattr(value, "handle_request") or hasattr(value, "handle_async_request")


def _verify(value: Any) -> bool:
    return isinstance(value, bool | str | os.PathLike | ssl.SSLContext)


def _cert(value: Any) -> bool:
    if isinstance(value, tuple) and 2 <= len(value) <= 3:  # (cert, key[, password])
        cert, *rest = value
        return isinstance(cert, str | os.PathLike) and all(
            part is None or isinstance(part, str | bytes | os.PathLike) for part in rest
        )
    return value is None or isinstance(value, str | os.PathLike)


def _encoding(value: Any) -> bool:
    if callable(value):
        return True
    try:
        return isinstance(value, str) and codecs.lookup(value) is not None
    except LookupError:
        raise ValueError(f"no codec named {value!r}") from None


_NONE = type(None)

# timeout, auth, min_tls_version and backend are checked where they are converted.
_ARGUMENTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "base_url": (_kind(str, httpx.URL), "a URL (str or httpx.URL)"),
    "headers": (_parses(httpx.Headers), "headers (a mapping or pairs of strings)"),
    "params": (_parses(httpx.QueryParams), "query parameters (a mapping, pairs or a string)"),
    "proxy": (_kind(str, httpx.URL, httpx.Proxy, bool, _NONE), "a proxy URL, False or None"),
    "proxy_bypass": (
        lambda value: not isinstance(value, str) and all(isinstance(h, str) for h in value),
        "a collection of host names",
    ),
    "verify": (_verify, "True, False, a CA bundle path or an ssl.SSLContext"),
    "verify_ssl": (_verify, "True, False, a CA bundle path or an ssl.SSLContext"),
    "cert": (_cert, "a PEM path, (cert, key) or (cert, key, password)"),
    "transport": (lambda value: value is None or _transport(value), "an httpx transport"),
    "mounts": (
        lambda value: value is None or all(m is None or _transport(m) for m in value.values()),
        "a mapping of URL patterns to transports (or None)",
    ),
    "follow_redirects": (_kind(bool), "True or False"),
    "http1": (_kind(bool), "True or False"),
    "http2": (_kind(bool), "True or False"),
    "limits": (_kind(httpx.Limits), "an httpx.Limits"),
    "default_encoding": (_encoding, "an encoding name or a callable taking the body's bytes"),
    "env_file": (_kind(str, os.PathLike, _NONE), "a dotenv file path or None"),
    "trust_env": (_kind(bool), "True or False"),
    "raise_for_status": (_kind(bool), "True or False"),
    "strict": (_kind(bool), "True or False"),
    "max_redirects": (_number(0), "an int >= 0"),
    "max_connections": (_number(1, none=True), "an int >= 1 or None"),
    "max_keepalive_connections": (_number(0, none=True), "an int >= 0 or None"),
    "keepalive_expiry": (_number(0, integer=False, none=True), "seconds >= 0 or None"),
    "max_response_size": (_number(0, none=True), "a size in bytes (an int >= 0) or None"),
    "expected_statuses": (
        lambda value: (
            not isinstance(value, str | bytes) and all(_number(100)(code) for code in value)
        ),
        "a collection of status codes",
    ),
    "event_hooks": (_hooks, "{'request': [...], 'response': [...]} or None"),
    "middleware": (_kind(list, tuple), "a list of middleware"),
    "error_parser": (callable, "a callable taking the response"),
    "json_serializer": (lambda value: value is None or callable(value), "a callable or None"),
    "clock": (
        lambda value: all(hasattr(value, n) for n in ("monotonic", "time", "sleep", "asleep")),
        "a Clock (monotonic, time, sleep, asleep)",
    ),
    "user_agent": (_kind(str), "a string"),
    "api_version": (_kind(str, APIVersion, _NONE), "a version string, an APIVersion or None"),
    "settings": (
        _one_of("._settings", "ButtressSettings", also=(_NONE,)),
        "a ButtressSettings or None",
    ),
    "redirects": (
        _one_of("._redirects", "RedirectConfig", also=(_NONE,)),
        "a RedirectConfig or None",
    ),
    "retry": (
        _one_of(".policies.retry", "RetryConfig", also=(bool, _NONE)),
        "a RetryConfig, True, False or None",
    ),
    "circuit_breaker": (
        _one_of(".policies.breaker", "CircuitBreakerConfig", "CircuitBreaker", also=(_NONE,)),
        "a CircuitBreakerConfig, a CircuitBreaker or None",
    ),
    "rate_limit": (
        _one_of(".policies.ratelimit", "RateLimitConfig", "RateLimiter", also=(_NONE,)),
        "a RateLimitConfig, a RateLimiter or None",
    ),
    "cache": (_one_of(".cache", "CacheConfig", also=(_NONE,)), "a CacheConfig or None"),
    "logging": (
        _one_of(".policies.logging", "LoggingConfig", also=(bool,)),
        "a LoggingConfig, True or False",
    ),
    "tracing": (
        _one_of(".observability", "TracingConfig", also=(bool,)),
        "a TracingConfig, True or False",
    ),
}


def check_arguments(
    owner: str, given: Mapping[str, Any], known: Collection[str] | None = None
) -> None:
    """Raise :class:`ConfigurationError` for the first argument of the wrong kind.

    ``given`` holds the arguments the caller passed; a name not in ``known``
    (when given) raises :func:`unknown_argument`'s error. A value is shown only
    when it is a number (a string may be a URL with a password).

    Examples:
        >>> try:
        ...     check_arguments("Client", {"max_redirects": -1})
        ... except ConfigurationError as e:
        ...     print(e)
        Client(max_redirects=...) takes an int >= 0, not -1
    """
    for name, value in given.items():
        if known is not None and name not in known:
            raise unknown_argument(owner, name, known)
        accepts, expected = _ARGUMENTS.get(name, (None, ""))
        detail = ""
        try:
            ok = accepts is None or accepts(value)
        except (TypeError, ValueError, AttributeError) as exc:
            ok, detail = False, f" ({exc})"
        if not ok:
            shown = repr(value) if value is None or isinstance(value, int | float) else None
            got = shown or type(value).__name__
            raise ConfigurationError(f"{owner}({name}=...) takes {expected}, not {got}{detail}")
    if given.get("base_url"):
        try:
            check_base_url(given["base_url"])
        except ConfigurationError as exc:  # InvalidURLError stays one
            raise type(exc)(f"{owner}(base_url=...) {exc}") from None
