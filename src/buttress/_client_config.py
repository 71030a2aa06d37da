"""``ClientConfig``: every option of a client, checked once, in one frozen object.

A client's keyword arguments become a :class:`ClientConfig`; the facade reads
nothing else. Each option is one field below: its default, and what it
accepts (a wrong value fails at once with a :class:`~buttress.ConfigurationError`
naming it, ``Client(retry=...) takes a RetryConfig, True, False or None, not str``,
not with an ``AttributeError`` deep in a layer). The config remembers which
options were given: the environment (``BUTTRESS_*``, see :mod:`._settings`)
fills only the others, and ``with_options`` starts again from what was given.

From a config come the pieces the client assembles: the network transport
(:meth:`ClientConfig.network`) and the layers around it (:meth:`ClientConfig.layers`,
built by :func:`buttress.transports.stack.build`).
"""

# No ``from __future__ import annotations``: pydantic would compile each of the fifty
# field annotations from its string as the class is made, on every program's first client.
import codecs
import importlib
import logging as _logging
import os
import ssl
import urllib.request
from collections.abc import Callable, Collection, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from ._arguments import unknown_argument
from ._clock import SYSTEM_CLOCK
from ._config import APIVersion, TimeoutConfig, check_base_url, construct, defaults
from ._environment import NO_SETTINGS, PREFIX, EnvironmentSettings
from ._exceptions import ConfigurationError
from ._network import build_network, connection_options
from ._network.backends import given_transport, network_factory
from ._options import RequestOptions
from ._redact import Redactor, declared_by, userinfo_secrets
from ._response import default_error_parser
from ._version import __version__
from .observability import TracingConfig
from .policies.logging import LoggingConfig
from .policies.retry import RetryConfig
from .transports.stack import Layers

if TYPE_CHECKING:
    from .auth import AuthTypes

__all__ = ["UNSET", "USER_AGENT", "ClientConfig", "coerce_auth", "read_environment"]

logger = _logging.getLogger("buttress")

USER_AGENT = f"buttress/{__version__} httpx/{httpx.__version__}"


class _Unset:
    """Marks an argument the caller did not give (so the environment may fill it)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# -- what each option accepts ---------------------------------------------------------------


def _accepts(check: Callable[[Any], bool], expected: str) -> AfterValidator:
    """A field validator: ``check`` says yes, or the error says what the option takes.

    A value is shown only when it is a number (a string may be a URL with a password).
    """

    def validate(value: Any) -> Any:
        detail = ""
        try:
            ok = check(value)
        except (TypeError, ValueError, AttributeError) as exc:
            ok, detail = False, f" ({exc})"
        if not ok:
            shown = repr(value) if value is None or isinstance(value, int | float) else None
            context = {"expected": expected, "got": shown or type(value).__name__}
            raise PydanticCustomError(
                "buttress_option", "{expected}", {**context, "detail": detail}
            )
        return value

    return AfterValidator(validate)


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
    return all(
        isinstance(functions, list) and all(callable(function) for function in functions)
        for functions in (value or {}).values()
    )


def _transport(value: Any) -> bool:
    return hasattr(value, "handle_request") or hasattr(value, "handle_async_request")


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
_BOOL = _accepts(_kind(bool), "True or False")
_VERIFY = _accepts(
    _kind(bool, str, os.PathLike, ssl.SSLContext),
    "True, False, a CA bundle path or an ssl.SSLContext",
)
_STATUSES = _accepts(
    lambda value: not isinstance(value, str | bytes) and all(_number(100)(c) for c in value),
    "a collection of status codes",
)

# An option's value is checked by its validator, not by its annotation: ``Any`` keeps
# each layer's module unimported until a value of its classes is given.
Bool: TypeAlias = Annotated[Any, _BOOL]


class ClientConfig(BaseModel):
    """Every option of a :class:`~buttress.Client` (and :class:`~buttress.AsyncClient`).

    Built by the client from its keyword arguments (see :class:`~buttress.Client`
    for what each means): ``ClientConfig.of(owner, arguments)`` checks them and
    reads the environment for what was not given. Frozen: ``with_options``
    makes a changed copy with :meth:`changed`. Adding an option to the clients
    means adding a field here (and its keyword to the clients' signature).

    Timeout, auth, TLS version and backend are checked where they are converted.

    Examples:
        >>> from buttress import ButtressSettings
        >>> config = ClientConfig.of("Client", {"max_redirects": 3, "settings": ButtressSettings()})
        >>> config.max_redirects, config.value("follow_redirects")
        (3, True)
        >>> try:
        ...     ClientConfig.of("Client", {"max_redirects": -1})
        ... except ConfigurationError as e:
        ...     print(e)
        Client(max_redirects=...) takes an int >= 0, not -1
    """

    # Built by of(), which runs each given option's checks itself: pydantic's validator for
    # some fifty fields would cost every program's first client more than the checks do.
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

    base_url: Annotated[Any, _accepts(_kind(str, httpx.URL), "a URL (str or httpx.URL)")] = ""
    headers: Annotated[
        Any, _accepts(_parses(httpx.Headers), "headers (a mapping or pairs of strings)")
    ] = None
    params: Annotated[
        Any, _accepts(_parses(httpx.QueryParams), "query parameters (a mapping, pairs or a string)")
    ] = None
    cookies: Any = None
    timeout: Any = None
    auth: Any = None
    verify_ssl: Annotated[Any, _VERIFY] = True
    verify: Annotated[Any, _VERIFY] = True
    cert: Annotated[Any, _accepts(_cert, "a PEM path, (cert, key) or (cert, key, password)")] = None
    min_tls_version: Any = None
    http1: Bool = True
    http2: Bool = False
    proxy: Annotated[
        Any, _accepts(_kind(str, httpx.URL, httpx.Proxy, bool, _NONE), "a proxy URL, False or None")
    ] = None
    proxy_bypass: Annotated[
        Any,
        _accepts(
            lambda value: not isinstance(value, str) and all(isinstance(h, str) for h in value),
            "a collection of host names",
        ),
    ] = ()
    follow_redirects: Bool = True
    max_redirects: Annotated[Any, _accepts(_number(0), "an int >= 0")] = 20
    redirects: Annotated[
        Any,
        _accepts(
            _one_of("._redirects", "RedirectConfig", also=(_NONE,)), "a RedirectConfig or None"
        ),
    ] = None
    event_hooks: Annotated[
        Any, _accepts(_hooks, "{'request': [...], 'response': [...]} (lists of callables) or None")
    ] = None
    max_connections: Annotated[Any, _accepts(_number(1, none=True), "an int >= 1 or None")] = 100
    max_keepalive_connections: Annotated[
        Any, _accepts(_number(0, none=True), "an int >= 0 or None")
    ] = 20
    keepalive_expiry: Annotated[
        Any, _accepts(_number(0, integer=False, none=True), "seconds >= 0 or None")
    ] = 5.0
    limits: Annotated[Any, _accepts(_kind(httpx.Limits), "an httpx.Limits")] = None
    transport: Annotated[
        Any, _accepts(lambda value: value is None or _transport(value), "an httpx transport")
    ] = None
    backend: Any = "httpx"
    mounts: Annotated[
        Any,
        _accepts(
            lambda value: value is None or all(m is None or _transport(m) for m in value.values()),
            "a mapping of URL patterns to transports (or None)",
        ),
    ] = None
    trust_env: Bool = True
    user_agent: Annotated[Any, _accepts(_kind(str), "a string")] = USER_AGENT
    api_version: Annotated[
        Any,
        _accepts(_kind(str, APIVersion, _NONE), "a version string, an APIVersion or None"),
    ] = None
    raise_for_status: Bool = True
    expected_statuses: Annotated[Any, _STATUSES, AfterValidator(frozenset)] = frozenset()
    error_parser: Annotated[Any, _accepts(callable, "a callable taking the response")] = (
        default_error_parser
    )
    strict: Bool = False
    settings: Annotated[
        Any,
        _accepts(
            # EnvironmentSettings: what with_options passes on from an environment with none set
            _one_of("._settings", "ButtressSettings", also=(_NONE, EnvironmentSettings)),
            "a ButtressSettings or None",
        ),
    ] = None
    retry: Annotated[
        Any,
        _accepts(
            _one_of(".policies.retry", "RetryConfig", also=(bool, _NONE)),
            "a RetryConfig, True, False or None",
        ),
    ] = True
    circuit_breaker: Annotated[
        Any,
        _accepts(
            _one_of(".policies.breaker", "CircuitBreakerConfig", "CircuitBreaker", also=(_NONE,)),
            "a CircuitBreakerConfig, a CircuitBreaker or None",
        ),
    ] = None
    rate_limit: Annotated[
        Any,
        _accepts(
            _one_of(".policies.ratelimit", "RateLimitConfig", "RateLimiter", also=(_NONE,)),
            "a RateLimitConfig, a RateLimiter or None",
        ),
    ] = None
    clock: Annotated[
        Any,
        _accepts(
            lambda value: all(hasattr(value, n) for n in ("monotonic", "time", "sleep", "asleep")),
            "a Clock (monotonic, time, sleep, asleep)",
        ),
    ] = SYSTEM_CLOCK
    middleware: Annotated[Any, _accepts(_kind(list, tuple), "a list of middleware")] = ()
    logging: Annotated[
        Any,
        _accepts(
            _one_of(".policies.logging", "LoggingConfig", also=(bool,)),
            "a LoggingConfig, True or False",
        ),
    ] = True
    tracing: Annotated[
        Any,
        _accepts(
            _one_of(".observability", "TracingConfig", also=(bool,)),
            "a TracingConfig, True or False",
        ),
    ] = True
    cache: Annotated[
        Any, _accepts(_one_of(".cache", "CacheConfig", also=(_NONE,)), "a CacheConfig or None")
    ] = None
    max_response_size: Annotated[
        Any, _accepts(_number(0, none=True), "a size in bytes (an int >= 0) or None")
    ] = 100 * 1024 * 1024
    json_serializer: Annotated[
        Any, _accepts(lambda value: value is None or callable(value), "a callable or None")
    ] = None
    default_encoding: Annotated[
        Any, _accepts(_encoding, "an encoding name or a callable taking the body's bytes")
    ] = "utf-8"
    env_file: Annotated[
        Any, _accepts(_kind(str, os.PathLike, _NONE), "a dotenv file path or None")
    ] = None

    # -- building and changing ----------------------------------------------------------------

    @classmethod
    def of(cls, owner: str, arguments: Mapping[str, Any]) -> "ClientConfig":
        """Check ``arguments`` (``owner``'s keyword arguments) and read the environment.

        Examples:
            >>> try:
            ...     ClientConfig.of("Client", {"retries": 2})
            ... except ConfigurationError as e:
            ...     print(e)
            Client() got an unexpected keyword argument 'retries'; did you mean `retry=`?
        """
        known = {name: value for name, value in arguments.items() if name in OPTION_NAMES}
        config = construct(cls, _checked(owner, known), given=known)
        for name in arguments.keys() - OPTION_NAMES:
            raise unknown_argument(owner, name, OPTION_NAMES)
        if config.base_url:
            try:
                check_base_url(config.base_url)
            except ConfigurationError as exc:  # InvalidURLError stays one
                raise type(exc)(f"{owner}(base_url=...) {exc}") from None
        _check_spellings(owner, arguments)
        if config.settings is not None:
            return config
        # with_options must not read the environment again: the settings read are kept.
        settings = read_environment(config.env_file)
        return config.model_copy(update={"settings": settings, "env_file": None})

    @property
    def given(self) -> dict[str, Any]:
        """The options given (the environment's settings among them), as keyword arguments."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        given.pop("env_file", None)  # read into settings already
        return given

    def changed(self, owner: str, changes: Mapping[str, Any]) -> "ClientConfig":
        """This config with ``changes`` (keyword arguments too): ``with_options``'s.

        An option given under one spelling is replaced by a change under the other
        (``limits=`` replaces ``max_connections=``).

        Examples:
            >>> from buttress import ButtressSettings
            >>> given = {"max_connections": 3, "settings": ButtressSettings()}
            >>> config = ClientConfig.of("Client", given)
            >>> changed = config.changed("Client", {"limits": httpx.Limits(max_connections=2)})
            >>> "max_connections" in changed.given, changed.pool_limits().max_connections
            (False, 2)
        """
        for name in changes.keys() - OPTION_NAMES:
            raise unknown_argument(f"{owner}.with_options", name, OPTION_NAMES)
        return self.of(owner, {**_without_other_spelling(self.given, changes), **changes})

    def __repr__(self) -> str:
        # Names only: values may be credentials (a token, a proxy URL with its password).
        return f"ClientConfig(given={sorted(self.given)})"

    __str__ = __repr__

    # -- precedence: the argument, then the environment, then the default -------------------

    def value(self, name: str) -> Any:
        """The option ``name``: as given, else from the environment, else the default."""
        if name in self.model_fields_set:
            return getattr(self, name)
        from_environment = _FROM_ENVIRONMENT.get(name)
        found = None if from_environment is None else from_environment(self.environment)
        return getattr(self, name) if found is None else found

    @property
    def environment(self) -> EnvironmentSettings:
        """The ``BUTTRESS_*`` settings (read when the config was made)."""
        return cast("EnvironmentSettings", self.settings)

    @cached_property
    def timeouts(self) -> TimeoutConfig:
        """The client's timeouts: the argument's, else the environment's, else the defaults."""
        if "timeout" in self.model_fields_set:
            return TimeoutConfig.coerce(self.timeout)
        return _environment_timeout(self.environment)

    @cached_property
    def version(self) -> APIVersion | None:
        """The API version the client sends, if any."""
        version = self.value("api_version")
        return APIVersion(version=version) if isinstance(version, str) else version

    @cached_property
    def request_options(self) -> RequestOptions:
        """What a request without per-request options carries."""
        # Layers that act on statuses (the retry layer's early stop) see the
        # client's raising settings here too, not only a call's.
        return RequestOptions(
            total_timeout=self.timeouts.total,
            max_response_size=self.max_response_size,
            raise_for_status=self.raise_for_status,
            expected_statuses=frozenset(self.expected_statuses),
        )

    @cached_property
    def client_auth(self) -> httpx.Auth | None:
        """The client's auth: the argument coerced, else the environment's credentials."""
        if "auth" in self.model_fields_set:
            return coerce_auth(self.auth)
        return _environment_auth(self.environment)

    def default_headers(self) -> httpx.Headers:
        """The default headers, ``User-Agent`` first."""
        headers = httpx.Headers({"User-Agent": self.value("user_agent")})
        headers.update(self.headers)
        return headers

    @cached_property
    def verify_value(self) -> Any:
        """``verify`` or ``verify_ssl`` (one spelling may be given), else the environment's."""
        if "verify" in self.model_fields_set:
            return self.verify
        return self.value("verify_ssl")

    def pool_limits(self) -> httpx.Limits:
        """``limits``, or one made of ``max_connections`` and its two siblings."""
        if self.limits is not None:
            return cast(httpx.Limits, self.limits)
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )

    def warn_if_unverified(self, owner: str) -> None:
        """Log that TLS verification is off, under the name it was turned off by."""
        if self.verify_value is False:
            logger.warning(
                "TLS certificate verification is disabled for this %s (%s=False): "
                "anyone on the network path can read and change its traffic",
                owner,
                "verify" if "verify" in self.model_fields_set else "verify_ssl",
            )

    # -- what the client assembles ------------------------------------------------------------

    def network(self, *, asynchronous: bool) -> tuple[Any, bool, Any]:
        """The network transport, whether it multiplexes (HTTP/2), and the proxy URL."""
        if self.transport is not None:
            network = given_transport(self.backend, self.transport, is_async=asynchronous)
            return network, self.http2, None
        given = {"verify": self.verify_value}
        given.update({n: getattr(self, n) for n in _CONNECTION & self.model_fields_set})
        connection = connection_options(self.environment, given)
        multiplexed = bool(connection.get("http2"))
        factory = network_factory(
            self.backend,
            is_async=asynchronous,
            http1=self.http1,
            http2=multiplexed,
            proxy=connection.get("proxy"),
        )
        network = build_network(
            factory,
            asynchronous=asynchronous,
            limits=self.pool_limits(),
            http1=self.http1,
            trust_env=self.trust_env,
            **connection,
        )
        return network, multiplexed, connection.get("proxy")

    def layers(self, *, multiplexed: bool) -> Layers:
        """The layers around the network transport; one breaker and one limiter for all mounts."""
        # retry=False keeps the layer with one attempt: it still enforces the total deadline.
        retry = self.retry if isinstance(self.retry, RetryConfig) else defaults(RetryConfig)
        if self.retry is False or self.retry is None:
            retry = RetryConfig(max_attempts=1, budget=None)
        breaker = self.circuit_breaker
        if breaker is not None:
            from .policies.breaker import CircuitBreaker, CircuitBreakerConfig

            if isinstance(breaker, CircuitBreakerConfig):
                breaker = CircuitBreaker(breaker, clock=self.clock)
        limiter = self.rate_limit
        if limiter is not None:
            from .policies.ratelimit import RateLimitConfig, RateLimiter

            if isinstance(limiter, RateLimitConfig):
                limiter = RateLimiter(limiter, clock=self.clock)
        return Layers(
            middleware=tuple(self.middleware),
            logging=self.logging_config,
            tracing=_tracing_config(self.tracing),
            retry=retry,
            circuit_breaker=breaker,
            rate_limit=limiter,
            cache=self.cache,
            guard=True,
            # HTTP/2 multiplexes many requests on one connection: no gate by connections.
            pool_gate=None if multiplexed else self.pool_limits().max_connections,
            clock=self.clock,
        )

    @cached_property
    def logging_config(self) -> LoggingConfig:
        """``logging=``, with ``True`` and ``False`` made configurations."""
        if self.logging is True:
            return defaults(LoggingConfig)
        if self.logging is False:
            return LoggingConfig(enabled=False)
        return cast(LoggingConfig, self.logging)

    def vocabulary(self, proxy: Any) -> Redactor:
        """The client's vocabulary of secrets: the names its logging config adds, what its
        auth declares, and the passwords of its base URL and proxies (the environment's too)."""
        urls = (self.value("base_url"), proxy)
        candidates = [url for url in urls if isinstance(url, str | httpx.URL)]
        if self.trust_env:
            candidates += urllib.request.getproxies().values()
        known = Redactor(values=[secret for url in candidates for secret in userinfo_secrets(url)])
        return self.logging_config.redactor().merged(declared_by(self.client_auth)).merged(known)


OPTION_NAMES = frozenset(ClientConfig.model_fields)
"""The keyword arguments of ``Client`` and ``AsyncClient``."""

# Given, these go to the connection layer as they are; not given, it reads the environment.
_CONNECTION = frozenset({"cert", "min_tls_version", "http2", "proxy", "proxy_bypass"})


def _checked(owner: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` through the checks of each option's field, the first refusal raised.

    Options are checked in the fields' order, each by its validators in turn, as
    validating the model would (every field is ``Any``: its validators are all its checks).
    """
    checked = dict(given)
    for name, field in ClientConfig.model_fields.items():
        if name not in checked:
            continue
        for check in field.metadata:
            try:
                checked[name] = check.func(checked[name])
            except PydanticCustomError as exc:
                context = exc.context or {}
                refused = f"takes {exc.message()}, not {context['got']}{context['detail']}"
                raise ConfigurationError(f"{owner}({name}=...) {refused}") from None
    return checked


def _tracing_config(tracing: TracingConfig | bool) -> TracingConfig:
    if tracing is True:
        return defaults(TracingConfig)
    if tracing is False:
        return TracingConfig(request_id=None, propagate=False, spans=False)
    return tracing


def coerce_auth(auth: "AuthTypes | None") -> httpx.Auth | None:
    """:func:`buttress.auth.coerce_auth`, imported when a client or a call is first given auth."""
    from .auth import coerce_auth

    return coerce_auth(auth)


def _environment_timeout(env: EnvironmentSettings) -> TimeoutConfig:
    base = defaults(TimeoutConfig) if env.timeout is None else TimeoutConfig.coerce(env.timeout)
    changes = {
        "connect": env.connect_timeout,
        "read": env.read_timeout,
        "write": env.write_timeout,
        "pool": env.pool_timeout,
        "total": env.total_timeout,
    }
    return base.model_copy(update={k: v for k, v in changes.items() if v is not None})


def _environment_auth(env: EnvironmentSettings) -> httpx.Auth | None:
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


# Where the environment fills an option not given (a ``None`` found leaves the default).
_FROM_ENVIRONMENT: dict[str, Callable[[EnvironmentSettings], Any]] = {
    "base_url": lambda env: env.base_url,
    "follow_redirects": lambda env: env.follow_redirects,
    "max_redirects": lambda env: env.max_redirects,
    "user_agent": lambda env: env.user_agent,
    "api_version": lambda env: env.api_version,
    "verify_ssl": lambda env: env.verify_ssl,
}


# Options that set one thing under two names (httpx's and the SPEC's, or a dotenv file
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


def _without_other_spelling(given: Mapping[str, Any], changes: Collection[str]) -> dict[str, Any]:
    """``given`` without the options ``changes`` give under their other spelling."""
    replaced: set[str] = set()
    for name, others in _SPELLINGS.items():
        if name in changes:
            replaced.update(others)
        if any(other in changes for other in others):
            replaced.add(name)
    return {name: value for name, value in given.items() if name not in replaced - set(changes)}


def read_environment(env_file: str | os.PathLike[str] | None) -> EnvironmentSettings:
    """The ``BUTTRESS_*`` settings, from the environment and ``env_file``.

    Variable names are matched without regard to case, as pydantic-settings does.

    Examples:
        >>> os.environ["BUTTRESS_MAX_REDIRECTS"] = "3"
        >>> read_environment(None).max_redirects
        3
        >>> del os.environ["BUTTRESS_MAX_REDIRECTS"]
        >>> read_environment(None) is NO_SETTINGS  # when none is set: nothing to parse
        True
    """
    if env_file is None and not any(name.upper().startswith(PREFIX) for name in os.environ):
        return NO_SETTINGS
    from ._settings import ButtressSettings

    # pydantic-settings' own argument, which the pydantic mypy plugin leaves out of __init__.
    named: dict[str, Any] = {} if env_file is None else {"_env_file": env_file}
    return ButtressSettings(**named)
