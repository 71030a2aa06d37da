"""Network backends: the transport at the bottom of the stack.

Every buttress layer is an httpx transport, so the layers do not care what
moves the bytes. The ``backend=`` argument of the clients picks that bottom
transport:

- ``"httpx"`` (default, both clients): ``httpx.HTTPTransport`` /
  ``httpx.AsyncHTTPTransport``;
- ``"aiohttp"`` (``AsyncClient`` only, extra ``aiohttp``): httpx-aiohttp's
  ``AiohttpTransport`` (see ``aiohttp.py``).

Why aiohttp: httpcore's async connection pool scans every connection and every
waiting request on each assignment, so ``httpx.AsyncClient`` slows down sharply
with hundreds of concurrent requests; aiohttp's connector does not. The aiohttp
backend speaks HTTP/1.1 only and has no SOCKS proxy support;
:func:`check_backend_supports` refuses those combinations with a clear error.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from .._exceptions import ConfigurationError

__all__ = ["BACKENDS", "Backend", "check_backend_supports", "given_transport", "network_factory"]

Backend = Literal["httpx", "aiohttp"]
"""The names ``backend=`` accepts."""

BACKENDS: dict[bool, tuple[str, ...]] = {False: ("httpx",), True: ("httpx", "aiohttp")}
"""Backends per client kind (``True``: async)."""


def _validate(backend: str, *, is_async: bool) -> None:
    if backend not in BACKENDS[is_async]:
        kind = "AsyncClient" if is_async else "Client"
        known = " or ".join(repr(name) for name in BACKENDS[is_async])
        hint = (
            " (the aiohttp backend is async only: use AsyncClient)" if backend == "aiohttp" else ""
        )
        raise ConfigurationError(f"{kind} backend must be {known}, not {backend!r}{hint}")


def check_backend_supports(
    backend: str,
    *,
    http1: bool = True,
    http2: bool = False,
    proxy: str | httpx.URL | httpx.Proxy | None = None,
) -> None:
    """Raise :class:`ConfigurationError` when ``backend`` cannot do what is asked.

    The aiohttp backend speaks HTTP/1.1 only and cannot reach a SOCKS proxy
    (HTTP proxies work).

    Examples:
        >>> check_backend_supports("httpx", http2=True)
        >>> check_backend_supports("aiohttp", http2=True)
        Traceback (most recent call last):
        ...
        buttress.ConfigurationError: the aiohttp backend speaks HTTP/1.1 only: \
drop http2=True or use backend='httpx'
    """
    if backend != "aiohttp":
        return
    if http2 or not http1:
        wanted = " and ".join(
            ([] if http1 else ["http1=False"]) + (["http2=True"] if http2 else [])
        )
        raise ConfigurationError(
            f"the aiohttp backend speaks HTTP/1.1 only: drop {wanted} or use backend='httpx'"
        )
    if proxy is not None:
        url = proxy.url if isinstance(proxy, httpx.Proxy) else httpx.URL(proxy)
        if url.scheme.startswith("socks"):
            raise ConfigurationError(
                "the aiohttp backend cannot use a SOCKS proxy: use backend='httpx' "
                "(with the 'socks' extra) or an HTTP proxy"
            )


def network_factory(
    backend: str,
    *,
    is_async: bool,
    http1: bool = True,
    http2: bool = False,
    proxy: str | httpx.URL | httpx.Proxy | Literal[False] | None = None,
) -> Any:
    """The class that makes ``backend``'s network transports (it takes httpx's arguments).

    The connection layer calls it once per route (direct, or through a proxy).

    Examples:
        >>> network_factory("httpx", is_async=False).__name__
        'HTTPTransport'
        >>> network_factory("aiohttp", is_async=False)
        Traceback (most recent call last):
        ...
        buttress.ConfigurationError: Client backend must be 'httpx', not 'aiohttp' \
(the aiohttp backend is async only: use AsyncClient)
    """
    _validate(backend, is_async=is_async)
    if backend == "aiohttp":
        check_backend_supports(backend, http1=http1, http2=http2, proxy=proxy or None)
        try:
            from .aiohttp import AiohttpTransport
        except ImportError:
            raise ConfigurationError(
                "backend='aiohttp' needs httpx-aiohttp: pip install 'buttress[aiohttp]'"
            ) from None
        return AiohttpTransport
    return httpx.AsyncHTTPTransport if is_async else httpx.HTTPTransport


def given_transport(backend: str, transport: Any, *, is_async: bool) -> Any:
    """A caller's own network transport, which rules out choosing a backend.

    Examples:
        >>> given_transport("httpx", httpx.MockTransport(lambda r: httpx.Response(204)),
        ...                 is_async=False) is not None
        True
    """
    _validate(backend, is_async=is_async)
    if backend != "httpx":
        raise ConfigurationError(
            f"pass either transport= or backend={backend!r}, not both: "
            "a given transport is the network transport"
        )
    return transport
