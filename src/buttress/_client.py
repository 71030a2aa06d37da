"""``Client`` and ``AsyncClient``: httpx clients that assemble the buttress stack.

The facade only *assembles*: its arguments become a :class:`ClientConfig`
(``_client_config.py``), from which come the network transport and the layers
around it (``transports/stack.py``); around ``httpx.Client.send`` it maps
failures into the buttress exception tree, raises for error statuses and parses
bodies into Pydantic models. Everything a layer does, the layer does.

Both clients share everything but the awaits: preparing a request, the options,
adopting the response, the verbs (``get`` calls ``request``, which the async
client awaits). What is twinned is the thin surface that sends, as in httpx.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, cast

import httpx
from httpx import USE_CLIENT_DEFAULT

from ._calls import (
    AsyncBodyCall,
    AsyncCall,
    AsyncRequest,
    AsyncVerbs,
    BodyCall,
    BodyKwargs,
    Call,
    PaginateKwargs,
    Request,
    RequestKwargs,
    Verbs,
    called_as,
)
from ._client_config import UNSET, ClientConfig, coerce_auth
from ._clock import SYSTEM_CLOCK, Clock
from ._config import APIVersion, TimeoutTypes
from ._exceptions import ConfigurationError, TimeoutError, closed_client, describe
from ._extensions import DEADLINE_KEY, EXTENSION_KEY, REDACTOR_KEY
from ._features import AsyncFeatures, Features
from ._flow import Effect, Outcome, OutOfTime, Read, adrive, call, drive, time_left
from ._handles import LayerHandles
from ._network import CertTypes, ProxyOption, TLSVersion
from ._options import RequestOptions
from ._parsing import parse_model
from ._redact import declare, declared_by
from ._redirects import RedirectConfig, RedirectHooks, client_redirects
from ._requests import RequestBuilding
from ._response import ErrorParser, Response, default_error_parser, raise_for_status
from ._sending import SharedTransport, adapt_hooks, adopt, reraise_mapped
from ._serialize import JSONSerializer
from .observability import TracingConfig
from .policies.logging import LoggingConfig, done, sending
from .policies.retry import RetryConfig
from .transports.stack import build

# What only some clients use is imported where it is used: pydantic-settings when the
# environment is read, a layer when the stack includes it, pagination, streaming and
# auth on first use (``from buttress import Client`` stays light).
if TYPE_CHECKING:
    from collections.abc import Awaitable

    from httpx._client import UseClientDefault
    from typing_extensions import Never, Unpack
    from typing_extensions import TypeVar as _DefaultedTypeVar

    from . import _features
    from ._network.backends import Backend
    from ._settings import ButtressSettings
    from .auth import AuthTypes
    from .cache import CacheConfig
    from .pagination import AsyncPaginator, Paginator
    from .policies.breaker import CircuitBreaker, CircuitBreakerConfig
    from .policies.ratelimit import RateLimitConfig, RateLimiter
    from .transports.middleware import MiddlewareTypes

    _Item = _DefaultedTypeVar("_Item", default=Any)  # what paginate() yields: Any, unless a model
else:
    Unpack = None

__all__ = ["AsyncClient", "BodyKwargs", "Client", "PaginateKwargs", "RequestKwargs"]

_R = TypeVar("_R")
_TransportT = TypeVar("_TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class _ReadOnlyHeaders(httpx.Headers):
    """The client's default headers; changing them in place would break immutability."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigurationError(
            "a client's headers cannot be changed; use client.with_options(headers=...) "
            "or pass headers= to the call"
        )

    __setitem__ = __delitem__ = update = _refuse


class _Facade(RequestBuilding, LayerHandles, RedirectHooks, Generic[_TransportT]):
    """Configuration and per-request logic shared by both clients (no I/O here)."""

    _config: ClientConfig
    _headers: httpx.Headers
    _transport: Any  # httpx's, built from the stack
    _frozen: bool = False

    def __init__(
        self,
        *,
        base_url: str | httpx.URL = UNSET,
        headers: httpx._types.HeaderTypes | None = None,
        params: httpx._types.QueryParamTypes | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        timeout: TimeoutTypes = UNSET,
        auth: AuthTypes = UNSET,
        verify_ssl: bool | str | Any = UNSET,
        verify: bool | str | Any = UNSET,
        cert: CertTypes | None = UNSET,
        min_tls_version: TLSVersion | None = UNSET,
        http1: bool = True,
        http2: bool = UNSET,
        proxy: ProxyOption | httpx.Proxy = UNSET,
        proxy_bypass: Collection[str] = UNSET,
        follow_redirects: bool = UNSET,
        max_redirects: int = UNSET,
        redirects: RedirectConfig | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        max_connections: int | None = UNSET,
        max_keepalive_connections: int | None = UNSET,
        keepalive_expiry: float | None = UNSET,
        limits: httpx.Limits = UNSET,
        transport: _TransportT | None = None,
        backend: Backend = "httpx",
        mounts: Mapping[str, _TransportT | None] | None = None,
        trust_env: bool = True,
        user_agent: str = UNSET,
        api_version: str | APIVersion | None = UNSET,
        raise_for_status: bool = True,
        expected_statuses: Collection[int] = (),
        error_parser: ErrorParser = default_error_parser,
        strict: bool = False,
        settings: ButtressSettings | None = None,
        retry: RetryConfig | bool | None = True,
        circuit_breaker: CircuitBreakerConfig | CircuitBreaker | None = None,
        rate_limit: RateLimitConfig | RateLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
        middleware: Sequence[MiddlewareTypes] = (),
        logging: LoggingConfig | bool = True,
        tracing: TracingConfig | bool = True,
        cache: CacheConfig | None = None,
        max_response_size: int | None = 100 * 1024 * 1024,
        json_serializer: JSONSerializer | None = None,
        default_encoding: str | Callable[[bytes], str] = "utf-8",
        env_file: str | os.PathLike[str] | None = None,
        **misspelt: Never,  # caught here to be named with a suggestion, not a bare TypeError
    ) -> None:
        given = {
            name: value
            for name, value in locals().items()
            if name not in ("self", "misspelt") and value is not UNSET
        }
        self._assemble(ClientConfig.of(type(self).__name__, {**given, **misspelt}))

    def _assemble(self, config: ClientConfig) -> None:
        """Build the network transport and the layers ``config`` describes, then httpx's client."""
        config.warn_if_unverified(type(self).__name__)
        timeouts, _ = config.timeouts, config.version  # a wrong value fails before any I/O
        network, multiplexed, proxy = config.network(asynchronous=self._asynchronous)
        layers = config.layers(multiplexed=multiplexed)
        mounts = dict(config.mounts or {})
        self._config = config
        self._circuit_breaker = cast("CircuitBreaker | None", layers.circuit_breaker)
        self._rate_limiter = cast("RateLimiter | None", layers.rate_limit)
        self._bottom: tuple[Any, dict[str, Any]] = (network, mounts)  # with_middleware shares it
        self._redirects = client_redirects(config.redirects, config.environment)
        self._redactor = config.vocabulary(proxy)
        cast(Any, super()).__init__(  # the httpx.Client next in the MRO
            base_url=config.value("base_url"),
            headers=config.default_headers(),
            params=config.params,
            cookies=config.cookies,
            timeout=timeouts.to_httpx(),
            auth=config.client_auth,
            follow_redirects=config.value("follow_redirects"),
            max_redirects=config.value("max_redirects"),
            event_hooks=adapt_hooks(config.event_hooks or {}, asynchronous=self._asynchronous),
            transport=build(network, layers),
            mounts={p: None if m is None else build(m, layers) for p, m in mounts.items()},
            trust_env=config.trust_env,
            default_encoding=config.default_encoding,
        )
        self._headers = _ReadOnlyHeaders(self._headers)
        self._frozen = True

    @property
    def _asynchronous(self) -> bool:
        return isinstance(self, httpx.AsyncClient)

    # -- immutability ---------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen and not name.startswith("_"):
            raise ConfigurationError(
                f"{type(self).__name__} is immutable: cannot set {name!r}; "
                f"use client.with_options({name}=...) to get a changed copy"
            )
        super().__setattr__(name, value)

    def with_options(self, **changes: Any) -> Any:
        """A new client with this one's configuration and ``changes`` applied.

        ``changes`` are the constructor's arguments; an unknown name or a wrong
        value raises :class:`ConfigurationError`. The new client has its own
        connection pool; close it too.

        Examples:
            >>> from buttress import Client
            >>> with Client(base_url="http://127.0.0.1:1") as client:
            ...     with client.with_options(headers={"X-Team": "web"}) as other:
            ...         print(other.headers["X-Team"])
            web
        """
        return type(self)(**self._config.changed(type(self).__name__, changes).given)

    def with_middleware(self, *middleware: MiddlewareTypes) -> Any:
        """A new client with ``middleware`` appended, sharing this client's connection pool.

        The new client has this one's configuration and shares what describes
        the API it talks to: the network transport (and mounts), the rate-limit
        budget, the circuit breaker and the cache. Closing the new client leaves
        the pool open; closing this one closes the pool, after which the derived
        clients refuse to send.

        Examples:
            >>> from buttress import Client, LoggingMiddleware
            >>> with Client(base_url="http://127.0.0.1:1") as client:
            ...     with client.with_middleware(LoggingMiddleware()) as logged:
            ...         print(len(logged._config.middleware))
            1
        """
        transport, mounts = self._bottom
        shared = {
            "transport": SharedTransport(transport, self),
            "mounts": {
                p: None if m is None else SharedTransport(m, self) for p, m in mounts.items()
            },
            "middleware": (*self._config.middleware, *middleware),
            "rate_limit": self._rate_limiter,
            "circuit_breaker": self._circuit_breaker,
        }
        return type(self)(**{**self._config.given, **shared})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._redactor.url(self.base_url)!r})"  # type: ignore[attr-defined]

    def __del__(self) -> None:
        if self._frozen and not self.is_closed:  # type: ignore[attr-defined]
            warnings.warn(
                f"unclosed {self!r}: use it in a 'with' block or call close()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    # -- around httpx's send, written once as a flow each client drives -------------------

    def _run(self, flow: Generator[Effect, Outcome, _R]) -> _R:
        """``flow`` run by this client's driver: its result on a ``Client``, an awaitable of it
        on an ``AsyncClient`` (typed as the former, as the shared verbs are)."""
        if self._asynchronous:
            return cast("_R", adrive(flow, self._transport, self._config.clock))
        return drive(flow, self._transport, self._config.clock)

    def _sending(
        self, request: httpx.Request, stream: bool, auth: Any, follow_redirects: Any
    ) -> Generator[Effect, Outcome, Response]:
        """``send`` written once, as a flow: each client drives it with its own driver."""
        auth = self._before_sending(request, auth)
        httpx_send = partial(
            cast(Any, super()).send,  # httpx's send, the redirect rules before it
            request,
            stream=stream,
            auth=auth,
            follow_redirects=follow_redirects,
        )
        # Failures while sending (an unstreamed body is read in there too) raise from the
        # buttress tree; httpx's own log records meanwhile are scrubbed with the request's
        # vocabulary of secrets.
        # One deadline for the whole call: every redirect hop and auth step httpx's send
        # makes, each attempt of each, and the read of a streamed error's body.
        clock, total = self._config.clock, RequestOptions.of(request).total_timeout
        deadline = None if total is None else clock.monotonic() + total
        extensions = request.extensions
        if deadline is not None:
            extensions[DEADLINE_KEY] = deadline
        given = extensions.get(EXTENSION_KEY)
        if stream:  # the body is the caller's to read, as under stream(): no layer reads it
            extensions[EXTENSION_KEY] = replace(RequestOptions.of(request), streamed=True)
        token = sending(request)
        try:
            sent = yield from call(httpx_send, httpx_send)  # called, or awaited
        except Exception as exc:
            reraise_mapped(exc, request)
        finally:
            done(token)
            extensions.pop(DEADLINE_KEY, None)  # the request may be sent again, anew
            if stream and given is None:  # and the request's options as they were given
                extensions.pop(EXTENSION_KEY, None)
            elif stream:
                extensions[EXTENSION_KEY] = given
        response = adopt(sent, stream=stream)
        if response.status_code < 400:
            return response
        raising, expected = self._raises_for(response.request)
        if stream and raising:  # a streamed error that raises is read for its message
            failed = yield Read(response, time_left(deadline, clock))
            if isinstance(failed, Exception) and isinstance(failed.__cause__, OutOfTime):
                assert total is not None  # only a deadline runs out
                raise TimeoutError(
                    f"total timeout of {total:g}s ran out reading the error body of "
                    f"{describe(request)}",
                    request=request,
                ) from failed.__cause__
            if isinstance(failed, Exception):  # a read that fails closes the response
                raise failed
        if raising:  # only a response read (so closed) can raise
            raise_for_status(response, error_parser=self._config.error_parser, expected=expected)
        return response

    def _before_sending(self, request: httpx.Request, auth: Any) -> Any:
        """Refuse when closed; give ``request`` the vocabulary of secrets (a call's auth's too)."""
        if self.is_closed:  # type: ignore[attr-defined]
            raise closed_client(self)
        if REDACTOR_KEY not in request.extensions:  # built without build_request
            declare(request, self._redactor)
        if auth is not USE_CLIENT_DEFAULT:
            auth = coerce_auth(auth)
            if auth is not None:
                declare(request, declared_by(auth))
        return auth

    def _raises_for(self, request: httpx.Request) -> tuple[bool, frozenset[int]]:
        """Whether an error status raises for ``request``, and the statuses it expects."""
        options, config = RequestOptions.of(request), self._config
        raising = options.raise_for_status
        expected = options.expected_statuses
        return (
            config.raise_for_status if raising is None else raising,
            config.expected_statuses if expected is None else expected,
        )

    def _model_result(self, response: Response, response_model: Any, strict: bool | None) -> Any:
        if response_model is None:
            return response
        strictly: bool = self._config.strict if strict is None else strict
        return parse_model(response, response_model, self._config.error_parser, strict=strictly)


class Client(  # type: ignore[misc]
    Verbs[Call, BodyCall], _Facade[httpx.BaseTransport], Features, httpx.Client
):
    """A synchronous HTTP client for REST APIs, with the buttress stack beneath it.

    It is an ``httpx.Client``: everything httpx offers works, every argument of
    ``httpx.Client`` is taken with httpx's meaning, and the buttress additions are
    keyword arguments. Where httpx and buttress name one setting differently
    (``verify``/``verify_ssl``, ``limits``/``max_connections``, ...), give one of
    the two: both raise :class:`ConfigurationError`. Safe to share between threads.

    Args:
        base_url: root URL for relative request URLs (env ``BUTTRESS_BASE_URL``).
        headers: default headers; ``User-Agent`` defaults to ``buttress/<v> httpx/<v>``.
        params: default query parameters.
        cookies: initial cookies.
        timeout: a :class:`TimeoutConfig`, seconds, ``httpx.Timeout`` or ``None``
            (defaults: connect 5, read 30, write 30, pool 10, no total).
        auth: ``("bearer", token)``, ``("api_key", key)``, ``(user, password)``,
            an ``httpx.Auth`` or a callable; see :mod:`buttress.auth`.
        verify_ssl: ``True`` (default), ``False`` (logged as a warning), a CA
            bundle path or an ``ssl.SSLContext``.
        verify: httpx's name for ``verify_ssl``.
        cert: client certificate for mTLS: a PEM path, ``(cert, key)`` or
            ``(cert, key, password)`` (env ``BUTTRESS_CLIENT_CERT``/``_KEY``).
        min_tls_version: ``"1.2"`` or ``"1.3"`` (env ``BUTTRESS_MIN_TLS_VERSION``).
        http1: speak HTTP/1.1 (default ``True``); ``http1=False, http2=True``
            speaks HTTP/2 only, as in httpx.
        http2: negotiate HTTP/2 through ALPN, falling back to HTTP/1.1; needs
            ``buttress[http2]`` (env ``BUTTRESS_HTTP2``).
        proxy: proxy URL (``http://``, ``https://``, ``socks5://``, credentials
            allowed) or an ``httpx.Proxy`` with ``auth=``; ``None`` reads
            ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` when
            ``trust_env``; ``False`` never proxies (env ``BUTTRESS_PROXY``).
        proxy_bypass: hosts (and their subdomains) that never use the proxy.
        follow_redirects: follow redirects (default ``True``).
        max_redirects: redirects followed before :class:`TooManyRedirectsError` (20).
        redirects: a :class:`RedirectConfig`: cross-origin refusal, per-method rules.
        event_hooks: httpx's ``{"request": [...], "response": [...]}``.
        max_connections: pool size limit (100).
        max_keepalive_connections: idle connections kept (20).
        keepalive_expiry: seconds an idle connection is kept (5).
        limits: an ``httpx.Limits``, instead of the three arguments above; its
            ``max_connections`` also bounds the requests let into the pool at once.
        transport: the bottom (network) transport; buttress layers wrap it.
        backend: ``"httpx"`` (the only one for ``Client``); ``AsyncClient`` also
            takes ``"aiohttp"`` (see :class:`AsyncClient`).
        mounts: per-URL-pattern bottom transports, as in httpx; each is wrapped too.
        trust_env: read ``SSL_CERT_FILE``, ``.netrc`` and the like from the environment.
        user_agent: replaces the default ``User-Agent``.
        api_version: a version string (sent as ``Accept-Version``) or an :class:`APIVersion`.
        raise_for_status: raise for 4xx/5xx answers (default ``True``).
        expected_statuses: error statuses returned instead of raised (e.g. ``{404}``).
        error_parser: reads an API's error body into the message and ``details``.
        strict: validate ``response_model`` in strict mode.
        settings: where environment defaults come from (default ``ButtressSettings()``).
        env_file: a dotenv file read for ``BUTTRESS_*`` settings too (none is read
            unless named, here or by ``BUTTRESS_ENV_FILE``).
        retry: ``True`` (default: :class:`RetryConfig` defaults, 3 attempts in all),
            a :class:`RetryConfig`, or ``False`` for one attempt. Per call, ``retry=``
            overrides it. The total deadline applies either way.
        circuit_breaker: a :class:`CircuitBreakerConfig` to guard calls with a
            breaker (default: none), or a :class:`CircuitBreaker` to share one
            circuit between clients; see :attr:`circuit_breaker`.
        rate_limit: a :class:`RateLimitConfig` (client-side limits, servers' limits
            obeyed), or a shared :class:`~buttress.transports.RateLimiter`.
        clock: the time source of every layer (backoff sleeps, breaker timeouts,
            rate limits); tests pass a :class:`~buttress.testing.FakeClock`.
        middleware: :class:`~buttress.Middleware` (or ``(request, call_next)``
            callables) run around every request, outermost first.
        logging: a :class:`~buttress.LoggingConfig`; ``True`` (default) for the
            defaults, ``False`` for no records (request ids and tracing stay).
        tracing: a :class:`~buttress.TracingConfig` for request ids, W3C trace
            context and OpenTelemetry spans; ``False`` turns them off.
        cache: an RFC 9111 private response cache (:class:`CacheConfig`); see ``client.cache``.
        max_response_size: bytes of body the client reads into memory before raising
            :class:`ResponseTooLargeError` (100 MB; ``None``: no limit). Streams
            (``client.stream``) are not limited unless a call says so.
        json_serializer: encodes ``json=`` bodies instead of orjson / json
            (a callable returning ``bytes`` or ``str``).
        default_encoding: decodes ``response.text`` when the response names no
            charset (``"utf-8"``), or a callable guessing it from the bytes, as in httpx.

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     client.get("/users/1").json()["name"]
        'Ada Lovelace'
    """

    if TYPE_CHECKING:  # what the shared batch returns here (see _features.py)
        batch: _features.Batch[list[Response], list[Response | Exception]]  # pyright: ignore[reportIncompatibleMethodOverride]

    def send(  # type: ignore[override]
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send ``request``; errors come from the buttress tree, error statuses raise.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     client.send(client.build_request("GET", "/users/2")).status_code
            200
        """
        flow = self._sending(request, stream, auth, follow_redirects)
        return drive(flow, self._transport, self._config.clock)

    @called_as(Request)
    def request(  # type: ignore[override]
        self, method: str, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Any:
        """Build and send a request; with ``response_model``, return the parsed model.

        Examples:
            >>> from pydantic import BaseModel
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> class User(BaseModel):
            ...     id: int
            ...     name: str
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     client.request("GET", "/users/1", response_model=User).name
            'Ada Lovelace'
        """
        request, auth, follow_redirects, strict = self._prepare(
            method, url, kwargs, response_model=response_model
        )
        response = self.send(request, auth=auth, follow_redirects=follow_redirects)
        return self._model_result(response, response_model, strict)

    @contextmanager
    def stream(  # type: ignore[override]
        self, method: str, url: httpx.URL | str, **kwargs: Unpack[BodyKwargs]
    ) -> Iterator[Response]:
        """Send a request and yield the response before its body is read.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     with client.stream("GET", "/download", params={"size": 100_000}) as response:
            ...         sum(len(chunk) for chunk in response.iter_bytes(chunk_size=8192))
            100000
        """
        request, auth, follow_redirects, _ = self._prepare(method, url, kwargs, streamed=True)
        response = self.send(request, stream=True, auth=auth, follow_redirects=follow_redirects)
        try:
            yield response
        finally:
            response.close()

    def paginate(
        self,
        url: httpx.URL | str,
        *,
        response_model: type[_Item] | None = None,
        **kwargs: Unpack[PaginateKwargs],
    ) -> Paginator[_Item]:
        """Iterate over the items of every page of ``url`` (see :mod:`buttress.pagination`).

        Give ``strategy="offset_limit" | "page_number" | "cursor" | "link_header"``,
        a ``pagination=`` strategy object, or neither (detected from the first
        page). ``max_pages``, ``max_items`` and ``start_offset`` bound the walk;
        ``response_model`` parses each item. Other arguments go to every ``get``.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     [user["id"] for user in client.paginate("/users/cursor", max_items=3)]
            [1, 2, 3]
        """
        from .pagination import Paginator

        return Paginator(self, *self._pages(url, response_model, kwargs))


class AsyncClient(  # type: ignore[misc]
    AsyncVerbs[AsyncCall, AsyncBodyCall],
    _Facade[httpx.AsyncBaseTransport],
    AsyncFeatures,
    httpx.AsyncClient,
):
    """The asynchronous twin of :class:`Client`: same arguments, same behaviour, ``await``.

    Event hooks may be plain functions or coroutine functions. Safe for many
    tasks on one event loop.

    ``backend="aiohttp"`` (extra ``buttress[aiohttp]``) puts httpx-aiohttp's
    transport under every layer: far faster with hundreds of concurrent
    requests, HTTP/1.1 only, no SOCKS proxies.

    Examples:
        >>> import asyncio
        >>> from buttress import AsyncClient
        >>> from buttress.testing import DemoServer
        >>> async def main(url: str) -> str:
        ...     async with AsyncClient(base_url=url) as client:
        ...         return (await client.get("/users/1")).json()["name"]
        >>> with DemoServer() as server:
        ...     asyncio.run(main(server.url))
        'Ada Lovelace'
    """

    if TYPE_CHECKING:  # what the shared batch returns here (see _features.py)
        batch: _features.Batch[Awaitable[list[Response]], Awaitable[list[Response | Exception]]]  # type: ignore[assignment]

    async def send(  # type: ignore[override]
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send ``request``; errors come from the buttress tree, error statuses raise.

        Examples:
            >>> async def status(client: AsyncClient) -> int:
            ...     return (await client.send(client.build_request("GET", "/users/2"))).status_code
        """
        flow = self._sending(request, stream, auth, follow_redirects)
        return await adrive(flow, self._transport, self._config.clock)

    @called_as(AsyncRequest)
    async def request(  # type: ignore[override]
        self, method: str, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Any:
        """Build and send a request; with ``response_model``, return the parsed model.

        Examples:
            >>> async def name(client: AsyncClient) -> str:
            ...     return (await client.request("GET", "/users/1")).json()["name"]
        """
        request, auth, follow_redirects, strict = self._prepare(
            method, url, kwargs, response_model=response_model
        )
        response = await self.send(request, auth=auth, follow_redirects=follow_redirects)
        return self._model_result(response, response_model, strict)

    @asynccontextmanager
    async def stream(  # type: ignore[override]
        self, method: str, url: httpx.URL | str, **kwargs: Unpack[BodyKwargs]
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response before its body is read.

        Examples:
            >>> async def size(client: AsyncClient) -> int:
            ...     async with client.stream("GET", "/download") as response:
            ...         return sum([len(chunk) async for chunk in response.aiter_bytes()])
        """
        request, auth, follow_redirects, _ = self._prepare(method, url, kwargs, streamed=True)
        response = await self.send(
            request, stream=True, auth=auth, follow_redirects=follow_redirects
        )
        try:
            yield response
        finally:
            await response.aclose()

    def paginate(
        self,
        url: httpx.URL | str,
        *,
        response_model: type[_Item] | None = None,
        **kwargs: Unpack[PaginateKwargs],
    ) -> AsyncPaginator[_Item]:
        """Iterate with ``async for`` over the items of every page (see :meth:`Client.paginate`).

        Examples:
            >>> async def ids(client: AsyncClient) -> list[int]:
            ...     return [user["id"] async for user in client.paginate("/users", max_items=3)]
        """
        from .pagination import AsyncPaginator

        return AsyncPaginator(self, *self._pages(url, response_model, kwargs))

    paginate_async = paginate
