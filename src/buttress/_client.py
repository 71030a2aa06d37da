"""``Client`` and ``AsyncClient``: httpx clients that assemble the buttress stack.

The facade only *assembles*: it turns its arguments into configuration, builds
the transport stack (``transports/stack.py``) and, around ``httpx.Client.send``,
maps failures into the buttress exception tree, raises for error statuses and
parses bodies into Pydantic models. Everything a layer does, the layer does.
"""

from __future__ import annotations

import inspect
import logging
import os
import pathlib
import urllib.request
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeAlias, TypeVar, cast, overload

import httpx
import pydantic
from httpx._client import USE_CLIENT_DEFAULT, UseClientDefault

from ._arguments import check_arguments, unknown_argument
from ._backends import Backend, given_transport, network_factory
from ._clock import SYSTEM_CLOCK, Clock
from ._config import APIVersion, RateLimitConfig, TimeoutConfig, TimeoutTypes
from ._exceptions import (
    ClientError,
    ConfigurationError,
    HTTPError,
    InvalidURLError,
    ValidationError,
    describe,
    map_exception,
)
from ._logging import LoggingConfig, done, sending
from ._network import CertTypes, ProxyOption, TLSVersion, build_network, connection_options
from ._options import EXTENSION_KEY, RequestOptions, check_options
from ._redact import REDACTOR_KEY, Redactor, declare, declared_by, userinfo_secrets
from ._redirects import RedirectConfig, RedirectHooks, client_redirects
from ._response import ErrorParser, Response, default_error_parser, raise_for_status
from ._serialize import JSONSerializer, encode_json
from ._version import __version__
from .observability import TracingConfig
from .policies.retry import RetryConfig
from .transports.stack import stack

# What only some clients use is imported where it is used: pydantic-settings when the
# environment is read, a layer when the stack includes it, pagination, streaming and
# auth on first use (``from buttress import Client`` stays light).
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Literal

    from typing_extensions import Never, TypedDict, Unpack

    from ._batch import BatchProgress
    from ._settings import ButtressSettings
    from .auth import AuthTypes
    from .cache import Cache, CacheConfig
    from .pagination import AsyncPaginator, PaginationStrategy, Paginator, StrategyName
    from .policies.breaker import CircuitBreaker, CircuitBreakerConfig
    from .streaming import ProgressCallback
    from .transports.middleware import MiddlewareTypes
    from .transports.ratelimit import RateLimiter, RateLimitStatus
else:
    from typing import TypedDict

    Unpack = None

__all__ = ["AsyncClient", "Client"]

logger = logging.getLogger("buttress")

T = TypeVar("T")
ModelsByStatus: TypeAlias = Mapping[int, type[T]]
"""``response_model={200: User, 404: ErrorBody}``: the model for each status parsed."""
_TransportT = TypeVar("_TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)

USER_AGENT = f"buttress/{__version__} httpx/{httpx.__version__}"


class _Unset:
    """Marks an argument the caller did not give (so the environment may fill it)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class RequestKwargs(TypedDict, total=False):
    """Keyword arguments every request method accepts (besides ``response_model``).

    For wrappers that pass them through with ``**kwargs: Unpack[RequestKwargs]``.

    Examples:
        >>> from typing_extensions import Unpack
        >>> from buttress import Client, Response
        >>> def get_user(client: Client, user_id: int, **kwargs: Unpack[RequestKwargs]) -> Response:
        ...     return client.get(f"/users/{user_id}", **kwargs)
    """

    params: httpx._types.QueryParamTypes | None
    headers: httpx._types.HeaderTypes | None
    cookies: httpx._types.CookieTypes | None
    auth: AuthTypes | UseClientDefault
    follow_redirects: bool | UseClientDefault
    timeout: TimeoutTypes | UseClientDefault
    extensions: dict[str, Any] | None
    strict: bool | None
    raise_for_status: bool | None
    expected_statuses: Collection[int] | None
    api_version: str | None
    retry: RetryConfig | bool | None
    middleware: Sequence[MiddlewareTypes] | None
    cache_control: str | None
    proxy: ProxyOption
    max_response_size: int | None
    idempotent: bool | None


class PaginateKwargs(RequestKwargs, total=False):
    """Request arguments plus how to paginate (see :mod:`buttress.pagination`)."""

    pagination: PaginationStrategy | None
    strategy: StrategyName | PaginationStrategy | None
    max_pages: int | None
    max_items: int | None
    start_offset: int | None


_PAGINATION_ARGS = ("pagination", "strategy", "max_pages", "max_items", "start_offset", "params")


class BodyKwargs(RequestKwargs, total=False):
    """Request arguments plus a body: ``json``, ``data``, ``files`` or ``content``.

    Examples:
        >>> from typing_extensions import Unpack
        >>> from buttress import Client, Response
        >>> def create(client: Client, **kwargs: Unpack[BodyKwargs]) -> Response:
        ...     return client.post("/users", **kwargs)
    """

    content: httpx._types.RequestContent | None
    data: httpx._types.RequestData | None
    files: httpx._types.RequestFiles | None
    json: Any


@dataclass(frozen=True, slots=True)
class _FacadeConfig:
    """What the facade itself (not a layer) needs per request."""

    raise_for_status: bool
    expected_statuses: frozenset[int]
    error_parser: ErrorParser
    strict: bool
    api_version: APIVersion | None
    total_timeout: float | None
    options: RequestOptions  # what a request without per-request options carries
    max_response_size: int | None = None
    json_serializer: JSONSerializer | None = None


@lru_cache(maxsize=512)
def _cached_adapter(model: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(model)


def _adapter(model: Any) -> pydantic.TypeAdapter[Any]:
    try:
        try:
            return _cached_adapter(model)
        except TypeError:  # unhashable (an Annotated with unhashable metadata, ...)
            return pydantic.TypeAdapter(model)
    except pydantic.PydanticSchemaGenerationError as exc:
        raise ConfigurationError(
            f"response_model {model!r} is not a type pydantic can validate"
        ) from exc


def _parse(response: Response, model: Any, strict: bool) -> Any:
    adapter = _adapter(model)
    name = model.__name__ if isinstance(model, type) else repr(model)
    try:
        if response.charset_encoding in (None, "utf-8", "utf8", "UTF-8"):
            return adapter.validate_json(response.content, strict=strict)
        return adapter.validate_python(response.json(), strict=strict)
    except pydantic.ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            response.json()  # raises InvalidJSONError with position and snippet
        errors = exc.errors(include_url=False)
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]
        )
        raise ValidationError(
            f"response to {describe(response.request)} does not match {name}: "
            f"{len(errors)} error(s): {summary}",
            errors=errors,
            model=model,
            response=response,
        ) from None


def _model_for(response: Response, response_model: Any, error_parser: ErrorParser) -> Any:
    """The model ``response_model`` gives ``response``'s status; raises when it gives none.

    A single model is for 2xx answers; a mapping names a model per status. An
    error status without a model raises its :class:`HTTPError` (even when
    expected: there is no model to return), any other a :class:`ValidationError`.
    """
    status = response.status_code
    if isinstance(response_model, Mapping):
        model = response_model.get(status)
        statuses = ", ".join(map(str, sorted(response_model)))
        note = f"not parsed: response_model maps {statuses} only; add {status}: Model to parse it"
    else:
        model = response_model if 200 <= status < 300 else None
        name = getattr(response_model, "__name__", repr(response_model))
        note = (
            f"not parsed: response_model={name} is for 2xx answers; to parse a {status} too, "
            f"map statuses to models: response_model={{200: {name}, {status}: ...}}"
        )
    if model is not None:
        return model
    if status >= 400:
        try:
            raise_for_status(response, error_parser=error_parser)
        except HTTPError as error:
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]  # PEP 678 (3.10 too)
            raise
    raise ValidationError(
        f"response to {describe(response.request)} is a {status}; {note}",
        model=response_model,
        response=response,
    )


def _statuses_to_expect(response_model: Mapping[Any, Any]) -> frozenset[int]:
    """The error statuses a ``{status: model}`` mapping names: returned and parsed, not raised."""
    for status in response_model:
        if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
            got = repr(status) if isinstance(status, int | float) else type(status).__name__
            raise ConfigurationError(
                f"response_model={{status: model, ...}} takes status codes (ints 100-599) "
                f"as keys, not {got}"
            )
    return frozenset(status for status in response_model if status >= 400)


def _read_environment(env_file: str | os.PathLike[str] | None) -> ButtressSettings:
    """The ``BUTTRESS_*`` settings; pydantic-settings is imported with the first client."""
    from ._settings import ButtressSettings

    # pydantic-settings' own argument, which the pydantic mypy plugin leaves out of __init__.
    named: dict[str, Any] = {} if env_file is None else {"_env_file": env_file}
    return ButtressSettings(**named)


# Arguments that set one thing under two names (httpx's and the SPEC's, or a dotenv file
# and settings already read): a client takes one of them.
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "verify": ("verify_ssl",),
    "limits": ("max_connections", "max_keepalive_connections", "keepalive_expiry"),
    "env_file": ("settings",),
}


def _check_spellings(owner: str, arguments: Mapping[str, Any]) -> None:
    # settings=None and env_file=None are the defaults: "read the environment as usual".
    given = {n for n, v in arguments.items() if v is not None or n not in ("settings", "env_file")}
    for name, others in _SPELLINGS.items():
        both = [other for other in others if other in given]
        if name in given and both:
            named = " and ".join(f"{n}=" for n in (name, *both))
            raise ConfigurationError(
                f"{owner}() was given {named}, which configure the same thing: give only one"
            )


def _without_other_spelling(kwargs: Mapping[str, Any], changes: Collection[str]) -> dict[str, Any]:
    """``kwargs`` without the settings ``changes`` give under their other spelling."""
    replaced: set[str] = set()
    for name, others in _SPELLINGS.items():
        if name in changes:
            replaced.update(others)
        if any(other in changes for other in others):
            replaced.add(name)
    return {name: value for name, value in kwargs.items() if name not in replaced - set(changes)}


def _env_timeout(env: ButtressSettings) -> TimeoutConfig:
    base = TimeoutConfig() if env.timeout is None else TimeoutConfig.coerce(env.timeout)
    changes = {
        "connect": env.connect_timeout,
        "read": env.read_timeout,
        "write": env.write_timeout,
        "pool": env.pool_timeout,
        "total": env.total_timeout,
    }
    return base.model_copy(update={k: v for k, v in changes.items() if v is not None})


def _coerce_auth(auth: AuthTypes) -> httpx.Auth | None:
    """:func:`buttress.auth.coerce_auth`, imported when a client or a call is first given auth."""
    from .auth import coerce_auth

    return coerce_auth(auth)


def _env_auth(env: ButtressSettings) -> httpx.Auth | None:
    if env.bearer_token is not None:
        from .auth import BearerAuth

        return BearerAuth(env.bearer_token)
    if env.api_key is not None:
        from .auth import APIKeyAuth

        return APIKeyAuth(env.api_key, header=env.api_key_header, param=env.api_key_param)
    if env.username is not None:
        password = env.password.get_secret_value() if env.password else ""
        return httpx.BasicAuth(env.username, password)
    return None


def _pick(value: Any, env_value: Any, default: Any) -> Any:
    """Precedence for one setting: the client's argument, then the environment, then the default."""
    if value is not UNSET:
        return value
    return default if env_value is None else env_value


def _logging_config(logging_: LoggingConfig | bool) -> LoggingConfig:
    if logging_ is True:
        return LoggingConfig()
    if logging_ is False:
        return LoggingConfig(enabled=False)
    return logging_


def _vocabulary(
    logging_: LoggingConfig,
    auth: httpx.Auth | None,
    urls: Sequence[Any],
    trust_env: bool,
) -> Redactor:
    """The client's vocabulary of secrets: the names its config adds, what its auth
    declares, and the passwords of its base URL and proxies (the environment's too)."""
    candidates = [url for url in urls if isinstance(url, str | httpx.URL)]
    if trust_env:
        candidates += urllib.request.getproxies().values()
    known = Redactor(values=[secret for url in candidates for secret in userinfo_secrets(url)])
    return logging_.redactor().merged(declared_by(auth)).merged(known)


def _observability_layers(
    middleware: Sequence[MiddlewareTypes],
    logging_: LoggingConfig,
    tracing: TracingConfig | bool,
) -> dict[str, Any]:
    """``stack()`` keywords for the middleware and logging layers of a client."""
    if tracing is True:
        tracing = TracingConfig()
    elif tracing is False:
        tracing = TracingConfig(request_id=None, propagate=False, spans=False)
    return {"middleware": tuple(middleware), "logging": logging_, "tracing": tracing}


class _SharedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Another client's network transport, borrowed: closing it here leaves it open."""

    def __init__(self, inner: Any, owner: Any) -> None:
        self._inner, self._owner = inner, owner

    def _check(self) -> None:
        if self._owner.is_closed:
            raise ClientError(
                "cannot send a request: the client this one was derived from "
                "(with_middleware) has been closed, and its connection pool with it"
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check()
        return cast(httpx.Response, self._inner.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check()
        return cast(httpx.Response, await self._inner.handle_async_request(request))

    def close(self) -> None:
        """The owner closes the pool."""

    async def aclose(self) -> None:
        """The owner closes the pool."""


class _Request(httpx.Request):
    """The requests the facade builds: an ``httpx.Request`` whose repr hides its secrets."""

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {Redactor.for_request(self).url(self.url)!r})>"


class _ReadOnlyHeaders(httpx.Headers):
    """The client's default headers; changing them in place would break immutability."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigurationError(
            "a client's headers cannot be changed; use client.with_options(headers=...) "
            "or pass headers= to the call"
        )

    __setitem__ = __delitem__ = update = _refuse


def _reraise_mapped(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise ``exc`` as buttress's exception; one that is not about the transport unchanged.

    (``raise map_exception(exc) from exc`` would make an unmapped exception its own cause.)
    """
    mapped = map_exception(exc, request)
    if mapped is exc:
        raise exc
    raise mapped from exc


class _MappedSyncStream(httpx.SyncByteStream):
    """Maps failures while the body streams (a read timeout mid-body) into the tree."""

    def __init__(self, stream: httpx.SyncByteStream, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            _reraise_mapped(exc, self._request)

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception as exc:
            _reraise_mapped(exc, self._request)


class _MappedAsyncStream(httpx.AsyncByteStream):
    """The async twin of :class:`_MappedSyncStream` (iteration protocols differ, logic does not)."""

    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            _reraise_mapped(exc, self._request)

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except Exception as exc:
            _reraise_mapped(exc, self._request)


class _Facade(RedirectHooks, Generic[_TransportT]):
    """Configuration and per-request logic shared by both clients (no I/O here)."""

    _config: _FacadeConfig
    _init_kwargs: dict[str, Any]
    _headers: httpx.Headers
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
        self._init_kwargs = {
            name: value
            for name, value in locals().items()
            if name not in ("self", "__class__", "misspelt") and value is not UNSET
        }
        check_arguments(type(self).__name__, {**self._init_kwargs, **misspelt}, _INIT_NAMES)
        _check_spellings(type(self).__name__, self._init_kwargs)
        env = settings if settings is not None else _read_environment(env_file)
        self._init_kwargs["settings"] = env  # with_options must not re-read the environment
        self._init_kwargs.pop("env_file")

        timeout_config = (
            TimeoutConfig.coerce(timeout) if timeout is not UNSET else _env_timeout(env)
        )
        verify = _pick(verify_ssl if verify is UNSET else verify, env.verify_ssl, True)
        if verify is False:
            logger.warning(
                "TLS certificate verification is disabled for this %s (%s=False): "
                "anyone on the network path can read and change its traffic",
                type(self).__name__,
                "verify" if "verify" in self._init_kwargs else "verify_ssl",
            )
        version = _pick(api_version, env.api_version, None)
        if isinstance(version, str):
            version = APIVersion(version=version)
        self._config = _FacadeConfig(
            raise_for_status=raise_for_status,
            expected_statuses=frozenset(expected_statuses),
            error_parser=error_parser,
            strict=strict,
            api_version=version,
            total_timeout=timeout_config.total,
            max_response_size=max_response_size,
            json_serializer=json_serializer,
            # Layers that act on statuses (the retry layer's early stop) see the
            # client's raising settings here too, not only a call's.
            options=RequestOptions(
                total_timeout=timeout_config.total,
                max_response_size=max_response_size,
                raise_for_status=raise_for_status,
                expected_statuses=frozenset(expected_statuses),
            ),
        )
        default_headers = httpx.Headers(
            {"User-Agent": _pick(user_agent, env.user_agent, USER_AGENT)}
        )
        default_headers.update(headers)

        is_async = isinstance(self, httpx.AsyncClient)
        if limits is UNSET:
            limits = httpx.Limits(
                max_connections=_pick(max_connections, None, 100),
                max_keepalive_connections=_pick(max_keepalive_connections, None, 20),
                keepalive_expiry=_pick(keepalive_expiry, None, 5.0),
            )
        multiplexed = http2 is True
        proxy_url = None
        if transport is not None:
            transport = given_transport(backend, transport, is_async=is_async)
        else:
            given = {"verify": verify, "cert": cert, "min_tls_version": min_tls_version}
            given.update(http2=http2, proxy=proxy, proxy_bypass=proxy_bypass)
            connection = connection_options(env, {k: v for k, v in given.items() if v is not UNSET})
            multiplexed = bool(connection.get("http2"))
            proxy_url = connection.get("proxy")
            factory = network_factory(
                backend,
                is_async=is_async,
                http1=http1,
                http2=multiplexed,
                proxy=connection.get("proxy"),
            )
            transport = cast(
                _TransportT,
                build_network(
                    factory,
                    asynchronous=is_async,
                    limits=limits,
                    http1=http1,
                    trust_env=trust_env,
                    **connection,
                ),
            )
        self._redirects = client_redirects(redirects, env)
        # retry=False keeps the layer with one attempt: it still enforces the total deadline.
        retry_config = retry if isinstance(retry, RetryConfig) else RetryConfig()
        if retry is False or retry is None:
            retry_config = RetryConfig(max_attempts=1, budget=None)
        if circuit_breaker is not None:
            from .policies.breaker import CircuitBreaker, CircuitBreakerConfig

            if isinstance(circuit_breaker, CircuitBreakerConfig):
                circuit_breaker = CircuitBreaker(circuit_breaker, clock=clock)
        self._circuit_breaker = circuit_breaker
        # One limiter for the default transport and every mount: one budget per client.
        if isinstance(rate_limit, RateLimitConfig):
            from .transports.ratelimit import RateLimiter

            limiter: RateLimiter | None = RateLimiter(rate_limit, clock=clock)
        else:
            limiter = rate_limit
        self._rate_limiter = limiter
        layers: dict[str, Any] = {
            "retry": retry_config,
            "circuit_breaker": self._circuit_breaker,
            "rate_limit": limiter,
            "cache": cache,
            "guard": True,
            # HTTP/2 multiplexes many requests on one connection: no gate by connections.
            "pool_gate": None if multiplexed else limits.max_connections,
            "clock": clock,
        }
        # The network transport and mounts, shared by with_middleware's clients.
        self._bottom: tuple[Any, dict[str, Any]] = (transport, dict(mounts or {}))
        logging_config = _logging_config(logging)
        layers.update(_observability_layers(middleware, logging_config, tracing))
        client_auth = _coerce_auth(auth) if auth is not UNSET else _env_auth(env)
        base = _pick(base_url, env.base_url, "")
        self._redactor = _vocabulary(logging_config, client_auth, (base, proxy_url), trust_env)
        cast(Any, super()).__init__(  # the httpx.Client next in the MRO
            base_url=base,
            headers=default_headers,
            params=params,
            cookies=cookies,
            timeout=timeout_config.to_httpx(),
            auth=client_auth,
            follow_redirects=_pick(follow_redirects, env.follow_redirects, True),
            max_redirects=_pick(max_redirects, env.max_redirects, 20),
            event_hooks=self._adapt_hooks(event_hooks or {}),
            transport=stack(cast(_TransportT, transport), **layers),
            mounts={
                pattern: None if mounted is None else stack(mounted, **layers)
                for pattern, mounted in (mounts or {}).items()
            },
            trust_env=trust_env,
            default_encoding=default_encoding,
        )
        self._headers = _ReadOnlyHeaders(self._headers)
        self._cache_config = cache
        self._frozen = True

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        """The client's circuit breaker (``state``, ``metrics``, ``force_open()``, ...), if any.

        Examples:
            >>> from buttress import CircuitBreakerConfig, Client
            >>> config = CircuitBreakerConfig(failure_threshold=5)
            >>> with Client(base_url="http://127.0.0.1:1", circuit_breaker=config) as client:
            ...     client.circuit_breaker.state
            'closed'
        """
        return self._circuit_breaker

    @property
    def cache(self) -> Cache:
        """Invalidate, clear and inspect the response cache (``cache=CacheConfig(...)``).

        Examples:
            >>> from buttress import CacheConfig, Client
            >>> with Client(base_url="https://api.example.com", cache=CacheConfig()) as client:
            ...     client.cache.invalidate("/users/123")
            0
        """
        config = self._cache_config
        if config is None or not config.enabled:
            raise ConfigurationError("this client has no cache; pass cache=CacheConfig(...)")
        from .cache import Cache

        return Cache(config.backend, base_url=self.base_url)  # type: ignore[attr-defined]

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
        for name in changes.keys() - _INIT_NAMES:
            raise unknown_argument(f"{type(self).__name__}.with_options", name, _INIT_NAMES)
        kept = _without_other_spelling(self._init_kwargs, changes)  # limits= replaces max_*
        return type(self)(**{**kept, **changes})

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
            ...         print(len(logged._init_kwargs["middleware"]))
            1
        """
        transport, mounts = self._bottom
        shared = {
            "transport": _SharedTransport(transport, self),
            "mounts": {
                p: None if m is None else _SharedTransport(m, self) for p, m in mounts.items()
            },
            "middleware": (*self._init_kwargs.get("middleware", ()), *middleware),
            "rate_limit": self._rate_limiter,
            "circuit_breaker": self._circuit_breaker,
        }
        return type(self)(**{**self._init_kwargs, **shared})

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

    def get_rate_limit_status(self, host: str | None = None) -> RateLimitStatus:
        """The client-side budget and the latest figures each server sent.

        ``limit``, ``remaining`` and ``reset_at`` describe the client-side limit
        (for ``host``, default the ``base_url``'s, when the limit is per host), or
        that host's server figures when no client-side limit is set; ``servers``
        has every host's. Empty unless the client has ``rate_limit=``.

        Examples:
            >>> from buttress import Client, RateLimitConfig
            >>> limit = RateLimitConfig(max_requests=100, time_window=60.0)
            >>> with Client(base_url="https://api.example.com", rate_limit=limit) as client:
            ...     status = client.get_rate_limit_status()
            >>> (status.remaining, status.limit)
            (100, 100)
        """
        if self._rate_limiter is None:
            from .transports.ratelimit import RateLimitStatus

            return RateLimitStatus()
        if host is None:
            host = self.base_url.netloc.decode("ascii")  # type: ignore[attr-defined]
        return self._rate_limiter.status(host)

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The client's rate limiter (``None`` without ``rate_limit=``).

        Shared by the default transport and every mount. Its
        :meth:`~buttress.transports.RateLimiter.reset` ends a pause a server
        imposed on a host.

        Examples:
            >>> from buttress import Client, RateLimitConfig
            >>> with Client(rate_limit=RateLimitConfig(max_requests=10)) as client:
            ...     client.rate_limiter.reset("api.example.com")
            >>> with Client() as client:
            ...     print(client.rate_limiter)
            None
        """
        return self._rate_limiter

    # -- building requests ----------------------------------------------------------------

    def _adapt_hooks(
        self, hooks: Mapping[str, list[Callable[..., Any]]]
    ) -> dict[str, list[Callable[..., Any]]]:
        # Response hooks get a read body (except under client.stream), so that
        # response.elapsed and response.json() work in them (SPEC 18.7).
        return {
            event: [_reading_hook(f) if event == "response" else f for f in functions]
            for event, functions in hooks.items()
        }

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: httpx._types.RequestContent | None = None,
        data: httpx._types.RequestData | None = None,
        files: httpx._types.RequestFiles | None = None,
        json: Any = None,
        params: httpx._types.QueryParamTypes | None = None,
        headers: httpx._types.HeaderTypes | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        raise_for_status: bool | None = None,
        expected_statuses: Collection[int] | None = None,
        api_version: str | None = None,
        retry: RetryConfig | bool | None = None,
        middleware: Sequence[MiddlewareTypes] | None = None,
        cache_control: str | None = None,
        proxy: ProxyOption = None,
        max_response_size: int | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Request:
        """Build a request the way httpx does, adding buttress's per-request options.

        Examples:
            >>> from buttress import Client
            >>> with Client(base_url="https://api.example.com", api_version="2") as client:
            ...     client.build_request("GET", "/users").headers["Accept-Version"]
            '2'
        """
        config = self._config
        extensions = dict(extensions) if extensions else {}
        options = extensions.get(EXTENSION_KEY)
        options = options if isinstance(options, RequestOptions) else None
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("raise_for_status", raise_for_status),
                ("expected_statuses", expected_statuses),
                ("retry", retry),
                ("cache_control", cache_control),
                ("proxy", proxy),
                ("max_response_size", max_response_size),
                ("middleware", middleware),
                ("idempotent", idempotent),
            )
            if value is not None
        }
        if changes:
            check_options(changes)
            if expected_statuses is not None:
                changes["expected_statuses"] = frozenset(expected_statuses)
            changes.pop("middleware", None)  # appended to the current middleware below
        if middleware:
            changes["middleware"] = (options or config.options).middleware + tuple(middleware)
        if not isinstance(timeout, UseClientDefault):
            timeout_config = TimeoutConfig.coerce(timeout)
            if timeout is None or isinstance(timeout, TimeoutConfig):
                changes["total_timeout"] = timeout_config.total
            timeout = timeout_config.to_httpx()
        if options is None and not changes:
            extensions[EXTENSION_KEY] = config.options  # the usual call shares one frozen default
        else:
            current = replace(options or config.options, **changes)
            if options is not None and "total_timeout" not in changes and not options.total_timeout:
                current = replace(current, total_timeout=config.total_timeout)
            # A buffered body gets the client's size limit; a stream is consumed in
            # constant memory and is limited only when the call asks.
            if current.max_response_size is None and not current.streamed:
                current = replace(current, max_response_size=config.max_response_size)
            extensions[EXTENSION_KEY] = current
        body = None if json is None else encode_json(json, config.json_serializer)

        version = config.api_version
        if api_version is not None and version is None:
            version = APIVersion(version=api_version)
        try:
            if version is not None and version.location == "path":
                url = version.prefixed(url, api_version)
            request = super().build_request(  # type: ignore[misc]
                method,
                url,
                content=content if body is None else body,
                data=data,
                files=files,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        except httpx.InvalidURL as exc:  # its message names the part, never the whole URL
            raise InvalidURLError(f"invalid URL for {method.upper()}: {exc}") from None
        except UnicodeEncodeError as exc:  # httpx writes str headers and cookies as ASCII
            raise ConfigurationError(
                f"cannot build a {method.upper()} request: a header or cookie value is not ASCII "
                f"(character {exc.start + 1} of the value); pass it as bytes, or encode it"
            ) from None
        if version is not None and version.location == "header":
            request.headers[version.header] = api_version or version.version
        if body is not None and "content-type" not in request.headers:
            request.headers["Content-Type"] = "application/json"
        declare(request, self._redactor)
        routed = RequestOptions.of(request).proxy
        if isinstance(routed, str | httpx.URL):  # a proxy for this call: its password too
            declare(request, Redactor(values=userinfo_secrets(routed)))
        request.__class__ = _Request
        return cast(httpx.Request, request)

    def _check_call_names(self, kwargs: Mapping[str, Any]) -> None:
        if not _CALL_NAMES.issuperset(kwargs):
            name = next(name for name in kwargs if name not in _CALL_NAMES)
            raise unknown_argument(f"{type(self).__name__}.request", name, _CALL_NAMES)

    def _declare(self, request: httpx.Request, auth: Any) -> None:
        """Give ``request`` the client's vocabulary of secrets, and a per-call auth's."""
        if REDACTOR_KEY not in request.extensions:  # built without build_request
            declare(request, self._redactor)
        if auth is not None and not isinstance(auth, UseClientDefault):
            declare(request, declared_by(auth))

    def _prepare(
        self,
        method: str,
        url: httpx.URL | str,
        kwargs: Any,
        *,
        streamed: bool = False,
        response_model: Any = None,
    ) -> tuple[httpx.Request, Any, Any, bool | None]:
        """Split a call's keyword arguments between building the request and sending it."""
        self._check_call_names(kwargs)
        arguments: dict[str, Any] = dict(kwargs)
        if isinstance(response_model, Mapping):  # its error statuses are parsed, not raised
            given = arguments.get("expected_statuses")
            check_options({"expected_statuses": given})
            expected = self._config.expected_statuses if given is None else frozenset(given)
            arguments["expected_statuses"] = expected | _statuses_to_expect(response_model)
        auth = arguments.pop("auth", USE_CLIENT_DEFAULT)
        follow_redirects = arguments.pop("follow_redirects", USE_CLIENT_DEFAULT)
        strict = arguments.pop("strict", None)
        if streamed:
            extensions = dict(arguments.pop("extensions", None) or {})
            options = extensions.get(EXTENSION_KEY)
            options = options if isinstance(options, RequestOptions) else RequestOptions()
            extensions[EXTENSION_KEY] = replace(options, streamed=True)
            arguments["extensions"] = extensions
        return self.build_request(method, url, **arguments), auth, follow_redirects, strict

    # -- after the transport has answered ---------------------------------------------------

    def _raises_for(self, request: httpx.Request) -> tuple[bool, frozenset[int]]:
        options = RequestOptions.of(request)
        config = self._config
        raising = (
            config.raise_for_status
            if options.raise_for_status is None
            else options.raise_for_status
        )
        expected = (
            config.expected_statuses
            if options.expected_statuses is None
            else options.expected_statuses
        )
        return raising, expected

    def _check(self, response: Response, expected: frozenset[int]) -> None:
        raise_for_status(response, error_parser=self._config.error_parser, expected=expected)

    def _model_result(self, response: Response, response_model: Any, strict: bool | None) -> Any:
        model = _model_for(response, response_model, self._config.error_parser)
        return _parse(response, model, self._config.strict if strict is None else strict)

    def _closed_error(self) -> ClientError:
        return ClientError(f"cannot send a request: this {type(self).__name__} has been closed")

    @staticmethod
    def _adopt(response: httpx.Response) -> Response:
        """Make httpx's response (and its redirect history) a buttress :class:`Response`,
        and the requests httpx made for redirects ones whose repr hides secrets."""
        for adopted in (*response.history, response):
            adopted.__class__ = Response
            if type(adopted._request) is httpx.Request:
                adopted._request.__class__ = _Request
        return cast(Response, response)


def _keywords(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )


_INIT_NAMES = _keywords(_Facade.__init__)
# What request(), get(), post(), ... take besides method, url and response_model.
_CALL_NAMES = _keywords(_Facade.build_request) | {"auth", "follow_redirects", "strict"}


class Client(_Facade[httpx.BaseTransport], httpx.Client):  # type: ignore[misc]
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

    # -- sending --------------------------------------------------------------------------

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
        if self.is_closed:
            raise self._closed_error()
        if not isinstance(auth, UseClientDefault):
            auth = _coerce_auth(auth)
        self._declare(request, auth)
        token = sending(request)  # httpx's own log records are scrubbed with its vocabulary
        try:
            # An unstreamed body is read in there, so read failures are mapped below.
            raw = super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        except Exception as exc:
            mapped = map_exception(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            done(token)
        response = self._adopt(raw)
        if stream:
            response.stream = _MappedSyncStream(
                cast(httpx.SyncByteStream, response.stream), request
            )
        try:
            raising, expected = self._raises_for(request)
            if stream and raising and response.status_code >= 400:
                response.read()
            if raising:
                self._check(response, expected)
        except BaseException:
            response.close()
            raise
        return response

    @overload  # type: ignore[override]
    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: type[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: None = None,
        **kwargs: Unpack[BodyKwargs],
    ) -> Response: ...
    @overload
    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: object,
        **kwargs: Unpack[BodyKwargs],
    ) -> Any: ...
    def request(
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
        if response_model is None:
            return response
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

    @overload
    def paginate(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[PaginateKwargs]
    ) -> Paginator[T]: ...
    @overload
    def paginate(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[PaginateKwargs]
    ) -> Paginator[Any]: ...
    def paginate(
        self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Paginator[Any]:
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
        from .pagination import Paginator, make_pages

        options = {name: kwargs.pop(name) for name in _PAGINATION_ARGS if name in kwargs}
        self._check_call_names(kwargs)  # now, not when the first page is fetched
        return Paginator(self, make_pages(url, response_model=response_model, **options), kwargs)

    def graphql(
        self,
        query: str,
        *,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        **kwargs: Unpack[RequestKwargs],
    ) -> Any:
        """Run a GraphQL operation and return its ``data`` (see :mod:`buttress.graphql`).

        POSTs ``query``, ``variables`` and ``operation_name`` as JSON to ``path``.
        ``errors`` in the answer raise :class:`GraphQLError`, which keeps the
        partial ``data``; ``response_model`` validates ``data``. A POST is not
        retried: pass ``idempotent=True`` for a query that is safe to send
        twice. Other arguments are ``post``'s.

        Examples:
            >>> def user_name(client: Client, user_id: int) -> str:
            ...     query = "query User($id: Int!) { user(id: $id) { name } }"
            ...     data = client.graphql(query, variables={"id": user_id}, idempotent=True)
            ...     return str(data["user"]["name"])
        """
        from .graphql import execute

        return execute(
            self,
            query,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            kwargs=kwargs,
        )

    def graphql_paginate(
        self,
        query: str,
        *,
        connection: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        cursor_variable: str = "after",
        max_pages: int | None = UNSET,
        max_items: int | None = None,
        **kwargs: Unpack[RequestKwargs],
    ) -> Paginator[Any]:
        """Iterate over the nodes of a Relay connection, page by page (``$after`` cursors).

        ``connection`` is the connection's dotted path in ``data``; each page
        passes the last ``pageInfo.endCursor`` as ``cursor_variable``.
        ``response_model`` parses each node; ``max_pages`` and ``max_items``
        bound the walk as in :meth:`paginate`. See :mod:`buttress.graphql`.

        Examples:
            >>> QUERY = (
            ...     "query Users($after: String) { users(first: 50, after: $after) {"
            ...     " edges { node { login } } pageInfo { hasNextPage endCursor } } }"
            ... )
            >>> def logins(client: Client) -> list[str]:
            ...     users = client.graphql_paginate(QUERY, connection="users")
            ...     return [user["login"] for user in users]
        """
        from .graphql import paginator

        return paginator(
            self,
            query,
            connection=connection,
            cursor_variable=cursor_variable,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            max_pages=max_pages,
            max_items=max_items,
            kwargs=kwargs,
        )

    def download(
        self,
        url: httpx.URL | str,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        chunk_size: int = 64 * 1024,
        **kwargs: Unpack[RequestKwargs],
    ) -> pathlib.Path:
        """Stream ``url`` into the file ``path`` (see :func:`buttress.streaming.download`).

        Examples:
            >>> def save(client: Client) -> None:
            ...     client.download("/download", "blob.bin", progress=lambda done, total: None)
        """
        from .streaming import download

        return download(self, url, path, progress=progress, chunk_size=chunk_size, **kwargs)

    @overload
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[False],
        on_progress: BatchProgress | None = None,
    ) -> list[Response]: ...
    @overload
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Response | Exception]: ...
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Any]:
        """Send ``requests``, at most ``concurrency`` at once; the results in input order.

        Each result is the response, or the exception that sending it raised
        (``return_exceptions=True``); with ``return_exceptions=False`` the first
        failure stops the batch and is raised. ``on_progress(done, total)`` is
        called in the caller's thread after each result. Every request goes
        through :meth:`send`, so every layer of the client applies. The threads
        are the call's own and have ended when it returns: after a stop (a
        failure, ``KeyboardInterrupt``) no request starts, and the call waits for
        those already sent. See the "Batches" page of the docs.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2, 404)]
            ...     [type(result).__name__ for result in client.batch(requests)]
            ['Response', 'Response', 'NotFoundError']
        """
        from ._batch import run

        return run(
            self,
            requests,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
        )

    @overload  # type: ignore[override]
    def get(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    def get(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    def get(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    def get(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    def get(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a GET request (see :meth:`request`).

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     client.get("/users", params={"limit": 2}).json()["total"]
            100
        """
        return self.request("GET", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def head(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    def head(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    def head(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    def head(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    def head(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a HEAD request (see :meth:`request`).

        Examples:
            >>> def size(client: Client) -> int:
            ...     return int(client.head("/download").headers["content-length"])
        """
        return self.request("HEAD", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def options(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    def options(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    def options(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    def options(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    def options(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send an OPTIONS request (see :meth:`request`).

        Examples:
            >>> def allowed(client: Client) -> str:
            ...     return client.options("/users").headers.get("allow", "")
        """
        return self.request("OPTIONS", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def delete(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    def delete(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    def delete(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    def delete(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    def delete(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a DELETE request (see :meth:`request`).

        Examples:
            >>> def remove(client: Client, user_id: int) -> None:
            ...     client.delete(f"/users/{user_id}")
        """
        return self.request("DELETE", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def post(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    def post(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    def post(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    def post(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    def post(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a POST request; ``json=`` accepts dicts, lists and Pydantic models.

        Examples:
            >>> def create(client: Client) -> int:
            ...     created = client.post("/users", json={"name": "Jane", "email": "j@x.io"})
            ...     return int(created.json()["id"])
        """
        return self.request("POST", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def put(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    def put(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    def put(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    def put(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    def put(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a PUT request (see :meth:`post`).

        Examples:
            >>> def replace(client: Client) -> None:
            ...     client.put("/users/1", json={"name": "Ada", "email": "ada@x.io"})
        """
        return self.request("PUT", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    def patch(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    def patch(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    def patch(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    def patch(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    def patch(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a PATCH request (see :meth:`post`).

        Examples:
            >>> def rename(client: Client) -> None:
            ...     client.patch("/users/1", json={"name": "Ada K."})
        """
        return self.request("PATCH", url, response_model=response_model, **kwargs)


class AsyncClient(_Facade[httpx.AsyncBaseTransport], httpx.AsyncClient):  # type: ignore[misc]
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

    def _adapt_hooks(
        self, hooks: Mapping[str, list[Callable[..., Any]]]
    ) -> dict[str, list[Callable[..., Any]]]:
        return {
            event: [_async_hook(f, reads=event == "response") for f in functions]
            for event, functions in hooks.items()
        }

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
        if self.is_closed:
            raise self._closed_error()
        if not isinstance(auth, UseClientDefault):
            auth = _coerce_auth(auth)
        self._declare(request, auth)
        token = sending(request)  # httpx's own log records are scrubbed with its vocabulary
        try:
            # An unstreamed body is read in there, so read failures are mapped below.
            raw = await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        except Exception as exc:
            mapped = map_exception(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            done(token)
        response = self._adopt(raw)
        if stream:
            response.stream = _MappedAsyncStream(
                cast(httpx.AsyncByteStream, response.stream), request
            )
        try:
            raising, expected = self._raises_for(request)
            if stream and raising and response.status_code >= 400:
                await response.aread()
            if raising:
                self._check(response, expected)
        except BaseException:
            await response.aclose()
            raise
        return response

    @overload  # type: ignore[override]
    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: type[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: None = None,
        **kwargs: Unpack[BodyKwargs],
    ) -> Response: ...
    @overload
    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        response_model: object,
        **kwargs: Unpack[BodyKwargs],
    ) -> Any: ...
    async def request(
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
        if response_model is None:
            return response
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

    @overload
    def paginate(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[PaginateKwargs]
    ) -> AsyncPaginator[T]: ...
    @overload
    def paginate(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[PaginateKwargs]
    ) -> AsyncPaginator[Any]: ...
    def paginate(
        self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> AsyncPaginator[Any]:
        """Iterate with ``async for`` over the items of every page (see :meth:`Client.paginate`).

        Examples:
            >>> async def ids(client: AsyncClient) -> list[int]:
            ...     return [user["id"] async for user in client.paginate("/users", max_items=3)]
        """
        from .pagination import AsyncPaginator, make_pages

        options = {name: kwargs.pop(name) for name in _PAGINATION_ARGS if name in kwargs}
        self._check_call_names(kwargs)  # now, not when the first page is fetched
        pages = make_pages(url, response_model=response_model, **options)
        return AsyncPaginator(self, pages, kwargs)

    async def graphql(
        self,
        query: str,
        *,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        **kwargs: Unpack[RequestKwargs],
    ) -> Any:
        """Run a GraphQL operation and return its ``data`` (see :meth:`Client.graphql`).

        Examples:
            >>> async def user_name(client: AsyncClient, user_id: int) -> str:
            ...     query = "query User($id: Int!) { user(id: $id) { name } }"
            ...     data = await client.graphql(query, variables={"id": user_id})
            ...     return str(data["user"]["name"])
        """
        from .graphql import aexecute

        return await aexecute(
            self,
            query,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            kwargs=kwargs,
        )

    def graphql_paginate(
        self,
        query: str,
        *,
        connection: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        cursor_variable: str = "after",
        max_pages: int | None = UNSET,
        max_items: int | None = None,
        **kwargs: Unpack[RequestKwargs],
    ) -> AsyncPaginator[Any]:
        """Iterate with ``async for`` over a Relay connection's nodes (see
        :meth:`Client.graphql_paginate`).

        Examples:
            >>> async def logins(client: AsyncClient, query: str) -> list[str]:
            ...     users = client.graphql_paginate(query, connection="users")
            ...     return [user["login"] async for user in users]
        """
        from .graphql import async_paginator

        return async_paginator(
            self,
            query,
            connection=connection,
            cursor_variable=cursor_variable,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            max_pages=max_pages,
            max_items=max_items,
            kwargs=kwargs,
        )

    paginate_async = paginate

    async def download(
        self,
        url: httpx.URL | str,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        chunk_size: int = 64 * 1024,
        **kwargs: Unpack[RequestKwargs],
    ) -> pathlib.Path:
        """Stream ``url`` into the file ``path`` (see :func:`buttress.streaming.adownload`).

        Examples:
            >>> async def save(client: AsyncClient) -> None:
            ...     await client.download("/download", "blob.bin")
        """
        from .streaming import adownload

        return await adownload(self, url, path, progress=progress, chunk_size=chunk_size, **kwargs)

    @overload
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[False],
        on_progress: BatchProgress | None = None,
    ) -> list[Response]: ...
    @overload
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Response | Exception]: ...
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Any]:
        """Send ``requests`` as tasks, at most ``concurrency`` at once (see :meth:`Client.batch`).

        The tasks belong to one task group: cancelling the call cancels the
        requests still running, and starts no other.

        Examples:
            >>> async def names(client: AsyncClient) -> list[str]:
            ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2)]
            ...     responses = await client.batch(requests, return_exceptions=False)
            ...     return [response.json()["name"] for response in responses]
        """
        from ._batch import arun

        return await arun(
            self,
            requests,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
        )

    @overload  # type: ignore[override]
    async def get(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    async def get(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    async def get(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    async def get(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    async def get(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a GET request (see :meth:`request`).

        Examples:
            >>> async def users(client: AsyncClient) -> list[dict[str, object]]:
            ...     return (await client.get("/users")).json()["data"]
        """
        return await self.request("GET", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def head(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    async def head(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    async def head(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    async def head(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    async def head(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a HEAD request (see :meth:`request`).

        Examples:
            >>> async def size(client: AsyncClient) -> int:
            ...     return int((await client.head("/download")).headers["content-length"])
        """
        return await self.request("HEAD", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def options(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    async def options(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    async def options(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    async def options(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    async def options(
        self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Any:
        """Send an OPTIONS request (see :meth:`request`).

        Examples:
            >>> async def allowed(client: AsyncClient) -> str:
            ...     return (await client.options("/users")).headers.get("allow", "")
        """
        return await self.request("OPTIONS", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def delete(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[RequestKwargs]
    ) -> T: ...
    @overload
    async def delete(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[RequestKwargs],
    ) -> T: ...
    @overload
    async def delete(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[RequestKwargs]
    ) -> Response: ...
    @overload
    async def delete(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[RequestKwargs]
    ) -> Any: ...
    async def delete(
        self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Any:
        """Send a DELETE request (see :meth:`request`).

        Examples:
            >>> async def remove(client: AsyncClient, user_id: int) -> None:
            ...     await client.delete(f"/users/{user_id}")
        """
        return await self.request("DELETE", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def post(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    async def post(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    async def post(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    async def post(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    async def post(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a POST request; ``json=`` accepts dicts, lists and Pydantic models.

        Examples:
            >>> async def create(client: AsyncClient) -> int:
            ...     return (await client.post("/users", json={"name": "Jane"})).json()["id"]
        """
        return await self.request("POST", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def put(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    async def put(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    async def put(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    async def put(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    async def put(self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any) -> Any:
        """Send a PUT request (see :meth:`post`).

        Examples:
            >>> async def replace(client: AsyncClient) -> None:
            ...     await client.put("/users/1", json={"name": "Ada"})
        """
        return await self.request("PUT", url, response_model=response_model, **kwargs)

    @overload  # type: ignore[override]
    async def patch(
        self, url: httpx.URL | str, *, response_model: type[T], **kwargs: Unpack[BodyKwargs]
    ) -> T: ...
    @overload
    async def patch(
        self,
        url: httpx.URL | str,
        *,
        response_model: ModelsByStatus[T],
        **kwargs: Unpack[BodyKwargs],
    ) -> T: ...
    @overload
    async def patch(
        self, url: httpx.URL | str, *, response_model: None = None, **kwargs: Unpack[BodyKwargs]
    ) -> Response: ...
    @overload
    async def patch(
        self, url: httpx.URL | str, *, response_model: object, **kwargs: Unpack[BodyKwargs]
    ) -> Any: ...
    async def patch(
        self, url: httpx.URL | str, *, response_model: Any = None, **kwargs: Any
    ) -> Any:
        """Send a PATCH request (see :meth:`post`).

        Examples:
            >>> async def rename(client: AsyncClient) -> None:
            ...     await client.patch("/users/1", json={"name": "Ada K."})
        """
        return await self.request("PATCH", url, response_model=response_model, **kwargs)


def _streamed(response: httpx.Response) -> bool:
    return RequestOptions.of(response.request).streamed


def _reading_hook(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Read the body before a response hook runs, unless the caller streams it."""

    def call(response: httpx.Response) -> Any:
        if not _streamed(response):
            response.read()
        return hook(response)

    return call


def _async_hook(hook: Callable[..., Any], *, reads: bool = False) -> Callable[..., Awaitable[None]]:
    """httpx's AsyncClient awaits every hook; let plain functions in too."""
    if inspect.iscoroutinefunction(hook) and not reads:
        return hook

    async def call(message: Any) -> None:
        if reads and not _streamed(message):
            await message.aread()
        result = hook(message)
        if inspect.isawaitable(result):
            await result

    return call
