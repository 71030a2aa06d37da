"""Authentication: API keys, bearer tokens, basic auth and custom handlers.

Every scheme is an ordinary ``httpx.Auth``, so it also works on a plain httpx
client. Secrets are held as ``pydantic.SecretStr`` and never appear in reprs.

The ``auth=`` argument of a buttress client accepts:

- an ``httpx.Auth`` (including the classes here) or a callable ``(request) -> request``;
- ``("bearer", token)`` -> :class:`BearerAuth`;
- ``("api_key", key)`` -> :class:`APIKeyAuth` in the ``X-API-Key`` header;
- any other ``(username, password)`` pair -> HTTP Basic, as in httpx.

The scheme word is matched case-insensitively. A tuple whose first item is a
scheme word is never treated as a username.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Literal, TypeAlias, cast

import httpx
from httpx._auth import FunctionAuth
from pydantic import SecretStr

from ._exceptions import ConfigurationError

__all__ = ["APIKeyAuth", "BearerAuth", "coerce_auth"]


def _secret(value: str | SecretStr) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


class BearerAuth(httpx.Auth):
    """Send ``Authorization: Bearer <token>``.

    Example:
        >>> auth = BearerAuth("s3cret")
        >>> auth
        BearerAuth(token='**********')
        >>> request = next(auth.auth_flow(httpx.Request("GET", "https://api.example.com")))
        >>> request.headers["Authorization"]
        'Bearer s3cret'
    """

    def __init__(self, token: str | SecretStr) -> None:
        self.token = _secret(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"


class APIKeyAuth(httpx.Auth):
    """Send an API key in a header (``X-API-Key`` by default) or a query parameter.

    Example:
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

    @property
    def location(self) -> Literal["header", "query"]:
        """Where the key travels."""
        return "query" if self.param else "header"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self.key.get_secret_value()
        if self.param:
            request.url = request.url.copy_merge_params({self.param: key})
        else:
            request.headers[self.header] = key
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


def coerce_auth(auth: Any) -> httpx.Auth | None:
    """Turn any accepted ``auth=`` value into an ``httpx.Auth`` (see the module docs).

    Example:
        >>> coerce_auth(("bearer", "t"))
        BearerAuth(token='**********')
        >>> type(coerce_auth(("alice", "pw"))).__name__
        'BasicAuth'
    """
    if auth is None or isinstance(auth, httpx.Auth):
        return auth
    if isinstance(auth, tuple):
        if len(auth) != 2 or not all(isinstance(part, str | SecretStr) for part in auth):
            raise ConfigurationError(
                "auth tuples are (scheme, secret) or (username, password): two strings"
            )
        first, second = auth
        scheme = _SCHEMES.get(str(first).lower()) if isinstance(first, str) else None
        if scheme is not None:
            return scheme(second)
        password = second.get_secret_value() if isinstance(second, SecretStr) else second
        return httpx.BasicAuth(str(first), password)
    if callable(auth):
        return FunctionAuth(cast(Callable[[httpx.Request], httpx.Request], auth))
    raise ConfigurationError(
        f"unsupported auth {type(auth).__name__}: give an httpx.Auth, a callable, "
        "('bearer', token), ('api_key', key) or (username, password)"
    )
