"""Authentication: API keys, bearer tokens, basic auth and custom handlers.

Every scheme is an ordinary ``httpx.Auth``, so it also works on a plain httpx
client. Secrets are held as ``pydantic.SecretStr`` and never appear in reprs.

The ``auth=`` argument of a buttress client accepts:

- an ``httpx.Auth`` (including the classes here) or a callable ``(request) -> request``;
- ``("bearer", token)`` -> :class:`BearerAuth`;
- ``("api_key", key)`` -> :class:`APIKeyAuth` in the ``X-API-Key`` header;
- ``("basic", username, password)`` -> HTTP Basic, spelled out;
- any other ``(username, password)`` pair -> HTTP Basic, as in httpx.

The rule: a tuple whose first item is a scheme word (matched
case-insensitively) is never treated as a username. Input that could mean two
things raises :class:`~buttress.ConfigurationError` instead of guessing: a
pair whose first item names a scheme buttress does not take in tuple form
(``("basic", x)``, ``("digest", x)``, ``("token", x)``, ...), an empty
secret, or a tuple of the wrong length.

Every handler here records the header that carries its secret in the
request's ``buttress.credential_headers`` extension, so the client drops that
header when a redirect leaves the origin, and says what it sends through
``redactor()`` (header or parameter name, secret value), so logs, messages and
cassettes hide it even under a name buttress would not guess.

Expiring credentials: :class:`RefreshingAuth` calls a refresh callback before
a known expiry and once on a 401, with one refresh shared by every concurrent
request (threads or tasks). :class:`OAuth2` is one whose refresh asks an OAuth 2.0
authorization server (client credentials, refresh token, authorization code with
PKCE, device code; OpenID Connect discovery).

Signed requests: :class:`AWSSigV4` signs with AWS Signature Version 4, again
for every retry attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

import anyio
import anyio.to_thread
import httpx
from httpx._auth import FunctionAuth  # httpx has no public name for it
from pydantic import SecretStr

from .. import _lazy
from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError, wrong_kind
from .._redact import Redactor, declare, mark_credential_headers
from ._sigv4 import AWSSigV4

if TYPE_CHECKING:
    from ._oauth import (
        AuthorizationCode,
        ClientCredentials,
        DeviceCode,
        DeviceCodePrompt,
        FileTokenStore,
        MemoryTokenStore,
        OAuth2,
        OAuth2Error,
        RefreshToken,
        StoredToken,
        TokenStore,
    )

__all__ = [
    "APIKeyAuth",
    "AWSSigV4",
    "AuthorizationCode",
    "BearerAuth",
    "ClientCredentials",
    "DeviceCode",
    "DeviceCodePrompt",
    "FileTokenStore",
    "MemoryTokenStore",
    "OAuth2",
    "OAuth2Error",
    "RefreshToken",
    "RefreshingAuth",
    "StoredToken",
    "Token",
    "TokenStore",
    "coerce_auth",
]


def _secret(value: str | SecretStr) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    if not secret.get_secret_value():
        raise ConfigurationError("an empty credential was given")
    return secret


class BearerAuth(httpx.Auth):
    """Send ``Authorization: Bearer <token>``.

    Examples:
        >>> auth = BearerAuth("s3cret")
        >>> auth
        BearerAuth(token='**********')
        >>> request = next(auth.auth_flow(httpx.Request("GET", "https://api.example.com")))
        >>> request.headers["Authorization"]
        'Bearer s3cret'
    """

    def __init__(self, token: str | SecretStr) -> None:
        self.token = _secret(token)

    def redactor(self) -> Redactor:
        """What this auth sends, for redaction: the token.

        Examples:
            >>> BearerAuth("s3cret").redactor().text("token s3cret refused")
            'token [REDACTED] refused'
        """
        return Redactor(headers=["Authorization"], values=[self.token])

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        mark_credential_headers(request, "Authorization")
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"


class APIKeyAuth(httpx.Auth):
    """Send an API key in a header (``X-API-Key`` by default) or a query parameter.

    Examples:
        >>> auth = APIKeyAuth("k3y", param="api_key")
        >>> request = next(auth.auth_flow(httpx.Request("GET", "https://api.example.com/x")))
        >>> str(request.url)
        'https://api.example.com/x?api_key=k3y'
    """

    def __init__(
        self, key: str | SecretStr, *, header: str = "X-API-Key", param: str | None = None
    ) -> None:
        self.key = _secret(key)
        self.header = header
        self.param = param
        self._declared = Redactor(
            headers=[] if param else [header], params=[param] if param else [], values=[self.key]
        )

    def redactor(self) -> Redactor:
        """What this auth sends, for redaction: its header or parameter name, and the key.

        Examples:
            >>> auth = APIKeyAuth("k3y-1", param="q")
            >>> auth.redactor().url("https://api.example.com/x?q=k3y-1&page=2")
            'https://api.example.com/x?q=[REDACTED]&page=2'
        """
        return self._declared

    @property
    def location(self) -> Literal["header", "query"]:
        """Where the key travels."""
        return "query" if self.param else "header"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self.key.get_secret_value()
        if self.param:
            request.url = request.url.copy_merge_params({self.param: key})
            declare(request, self._declared)  # no header to mark: name the parameter
        else:
            request.headers[self.header] = key
            mark_credential_headers(request, self.header)
        yield request

    def __repr__(self) -> str:
        where = f"param={self.param!r}" if self.param else f"header={self.header!r}"
        return f"APIKeyAuth(key='**********', {where})"


AuthTypes: TypeAlias = (
    "httpx.Auth | tuple[str, str | SecretStr] | Callable[[httpx.Request], httpx.Request] | None"
)

_SCHEMES: dict[str, Callable[[str | SecretStr], httpx.Auth]] = {
    "bearer": BearerAuth,
    "api_key": APIKeyAuth,
    "apikey": APIKeyAuth,
}
_AMBIGUOUS = frozenset({"basic", "digest", "token", "oauth", "oauth2", "jwt", "api-key", "key"})


def coerce_auth(auth: Any) -> httpx.Auth | None:
    """Turn any accepted ``auth=`` value into an ``httpx.Auth`` (see the module docs).

    Examples:
        >>> coerce_auth(("bearer", "t"))
        BearerAuth(token='**********')
        >>> type(coerce_auth(("alice", "pw"))).__name__
        'BasicAuth'
    """
    if auth is None or isinstance(auth, httpx.Auth):
        return auth
    if isinstance(auth, tuple):
        return _from_tuple(auth)
    if callable(auth):
        return FunctionAuth(cast(Callable[[httpx.Request], httpx.Request], auth))
    raise wrong_kind(  # a TypeError too, as httpx raises
        f"unsupported auth {type(auth).__name__}: give an httpx.Auth, a callable, "
        "('bearer', token), ('api_key', key) or (username, password)"
    )


def _plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _from_tuple(auth: tuple[Any, ...]) -> httpx.Auth:
    if not all(isinstance(part, str | SecretStr) for part in auth) or not 2 <= len(auth) <= 3:
        raise ConfigurationError(
            "auth tuples are ('bearer', token), ('api_key', key), ('basic', user, password) "
            "or (username, password): strings only"
        )
    word = auth[0].lower() if isinstance(auth[0], str) else ""
    if len(auth) == 3:
        if word != "basic":
            raise ConfigurationError("a three-item auth tuple must be ('basic', user, password)")
        return httpx.BasicAuth(_plain(auth[1]), _plain(auth[2]))
    first, second = auth
    scheme = _SCHEMES.get(word)
    if scheme is not None:
        return scheme(second)
    if word in _AMBIGUOUS:
        raise ConfigurationError(
            f"ambiguous auth tuple: {first!r} looks like a scheme, not a username; "
            "use ('bearer', token), ('api_key', key), ('basic', user, password), "
            "or an auth object such as httpx.DigestAuth"
        )
    if not _plain(first):
        raise ConfigurationError("basic auth needs a username")
    return httpx.BasicAuth(_plain(first), _plain(second))


# --- expiring credentials --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A credential and, when known, how many seconds it stays valid.

    A refresh callback returns a ``Token`` (or a plain ``str`` / ``SecretStr``
    when the lifetime is unknown).

    Examples:
        >>> Token("abc", expires_in=3600)
        Token(value='**********', expires_in=3600)
    """

    value: str | SecretStr
    expires_in: float | None = None

    def __repr__(self) -> str:
        return f"Token(value='**********', expires_in={self.expires_in!r})"


Credential: TypeAlias = "str | SecretStr | Token"
RefreshCallback: TypeAlias = "Callable[[], Credential | Awaitable[Credential]]"


@dataclass(frozen=True, slots=True)
class _Refresh:
    """Flow effect: refresh unless someone already did since ``generation``."""

    generation: int


class RefreshingAuth(httpx.Auth):
    """A token that renews itself: before a known expiry, and once after a 401.

    ``refresh`` is a plain function or a coroutine function returning the new
    credential (a :class:`Token` to give its lifetime). It runs when there is
    no token yet, when the token expires within ``leeway`` seconds (a token
    that lives no longer than twice that: half way through its life), and when
    the server answers 401; the request is then sent once more with the new
    token (a second 401 is returned as is). When many requests need a refresh
    at the same time (threads on a ``Client``, tasks on an ``AsyncClient``)
    the callback runs once and all of them use its result.

    The token is sent as ``<header>: <scheme> <token>`` (``Authorization:
    Bearer ...`` by default; ``scheme=""`` sends the bare token, as API keys do).

    Examples:
        >>> calls = []
        >>> def renew() -> Token:
        ...     calls.append(1)
        ...     return Token(f"t{len(calls)}", expires_in=3600)
        >>> auth = RefreshingAuth(renew)
        >>> request = next(auth.sync_auth_flow(httpx.Request("GET", "https://api.example.com")))
        >>> request.headers["Authorization"], len(calls)
        ('Bearer t1', 1)
    """

    requires_request_body = True  # the request may be sent twice

    def __init__(
        self,
        refresh: RefreshCallback,
        *,
        token: Credential | None = None,
        header: str = "Authorization",
        scheme: str = "Bearer",
        leeway: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._callback = refresh
        self.header, self.scheme, self.leeway = header, scheme, leeway
        self._clock = clock
        self._token: SecretStr | None = None
        self._renew_at: float | None = None  # monotonic; None: the token does not expire
        self._generation = 0
        self._attempts = 0  # refreshes begun, failed ones too
        self._failure: Exception | None = None  # how the last refresh failed, if it did
        self.refreshes = 0
        """How many times the refresh callback has run."""
        self._state_lock = threading.Lock()  # O(1) updates only
        self._thread_lock = threading.Lock()  # single flight for threads
        self._task_lock = anyio.Lock()  # single flight for tasks; never blocks the loop
        if token is not None:
            self._store(token)

    def __repr__(self) -> str:
        return f"RefreshingAuth(header={self.header!r}, scheme={self.scheme!r})"

    def redactor(self) -> Redactor:
        """What this auth sends, for redaction: its header (the token changes; each
        request's current token is found in that header).

        Examples:
            >>> RefreshingAuth(lambda: "t", header="X-Session").redactor()
            Redactor(headers=['x-session'], params=[], patterns=[], values=0)
        """
        return Redactor(headers=[self.header])

    def _store(self, credential: Credential) -> None:
        token = credential if isinstance(credential, Token) else Token(credential)
        secret = _secret(token.value)
        lifetime, renew_at = token.expires_in, None
        if lifetime is not None:
            # `leeway` before it expires, but a token that lives no longer than twice that
            # is used for half its life: else every call would fetch a new one first.
            early = min(self.leeway, max(lifetime, 0.0) / 2)
            renew_at = self._clock.monotonic() + lifetime - early
        with self._state_lock:
            self._token, self._renew_at = secret, renew_at
            self._generation += 1

    def _current(self) -> tuple[int, SecretStr | None, bool]:
        with self._state_lock:
            expiring = self._renew_at is not None and self._clock.monotonic() >= self._renew_at
            return self._generation, self._token, expiring

    def _apply(self, request: httpx.Request) -> None:
        _, token, _ = self._current()
        if token is None:  # pragma: no cover - a refresh always stores a token
            raise ConfigurationError("the refresh callback gave no credential")
        value = token.get_secret_value()
        request.headers[self.header] = f"{self.scheme} {value}" if self.scheme else value
        mark_credential_headers(request, self.header)

    def _flow(self, request: httpx.Request) -> Generator[httpx.Request | _Refresh, Any, None]:
        generation, token, expiring = self._current()
        if token is None or expiring:
            yield _Refresh(generation)
            generation = self._current()[0]
        self._apply(request)
        response = yield request
        if self._rejected(response):
            yield _Refresh(generation)
            self._apply(request)
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()  # what httpx does for requires_request_body: a resend has the body
        flow, outcome = self._flow(request), None
        try:
            while True:
                step = flow.send(outcome)
                if isinstance(step, _Refresh):
                    self._refresh_in_thread(step.generation)
                    outcome = None
                else:
                    outcome = yield step
        except StopIteration:
            return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()  # what httpx does for requires_request_body
        flow, outcome = self._flow(request), None
        try:
            while True:
                step = flow.send(outcome)
                if isinstance(step, _Refresh):
                    await self._refresh_in_task(step.generation)
                    outcome = None
                else:
                    outcome = yield step
        except StopIteration:
            return

    def _refresh_in_thread(self, generation: int) -> None:
        arrived = self._attempts
        with self._thread_lock:
            if self._begin_refresh(generation, arrived):
                with self._sharing_failure():
                    result = self._obtain()
                self._refreshed(result)

    async def _refresh_in_task(self, generation: int) -> None:
        arrived = self._attempts
        async with self._task_lock:
            if self._begin_refresh(generation, arrived):
                with self._sharing_failure():
                    result = await self._aobtain()
                self._refreshed(result)

    def _begin_refresh(self, generation: int, arrived: int) -> bool:
        """Whether the caller that waited for the lock refreshes now (it holds the lock).

        Not when another refreshed while it waited; and when the refresh it waited
        for failed, it fails the same way: waiters share a failure as they share a
        success (else each would try again in turn, and with a token endpoint that
        is down or slow the last would wait for all the others' timeouts). A caller
        that comes later tries again.
        """
        if self._current()[0] != generation:
            return False
        if self._attempts != arrived and self._failure is not None:
            raise self._failure
        self._attempts += 1
        return True

    @contextmanager
    def _sharing_failure(self) -> Iterator[None]:
        """Keep the refresh's error for the callers waiting for it."""
        try:
            yield
        except Exception as exc:
            self._failure = exc
            raise

    def _rejected(self, response: httpx.Response) -> bool:
        """Whether ``response`` says the token was refused (worth one refresh and resend)."""
        return response.status_code == 401

    def _obtain(self) -> Any:
        """A new credential, from a thread (subclasses fetch it differently)."""
        result = self._callback()
        return _wait_for(result) if inspect.isawaitable(result) else result

    async def _aobtain(self) -> Any:
        """A new credential, from a task, never blocking the event loop."""
        if inspect.iscoroutinefunction(self._callback):
            return await self._callback()
        # a blocking callback runs in a worker thread, not on the loop
        result = await anyio.to_thread.run_sync(self._callback)
        return await result if inspect.isawaitable(result) else result

    def _refreshed(self, result: Any) -> None:
        if not isinstance(result, str | SecretStr | Token):
            raise ConfigurationError(
                f"the refresh callback returned {type(result).__name__}; "
                "return a str, a SecretStr or a buttress.Token"
            )
        self._store(result)
        self._failure = None
        self.refreshes += 1


def _wait_for(awaitable: Awaitable[Any]) -> Any:
    """Run an async refresh callback's result from synchronous code."""

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    # A sync client used inside an event loop: that loop is busy with us, use another.
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, wait()).result()


# OAuth 2.0 builds on RefreshingAuth: its module imports this one, and is imported on first
# use. Every name in __all__ this module does not define is one of the OAuth module's.
_OAUTH_NAMES = tuple(name for name in __all__ if name not in globals())
__getattr__, __dir__ = _lazy.lazy_exports(__name__, {"buttress.auth._oauth": _OAUTH_NAMES})
