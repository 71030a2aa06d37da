"""Redirect policy, applied through httpx's own redirect machinery.

httpx follows redirects inside ``Client.send`` (a transport never sees them)
and builds each next request through three hooks: ``_redirect_url``,
``_redirect_method`` and ``_redirect_headers``. :class:`RedirectHooks` is a
small mixin of the buttress clients that overrides those hooks with the
client's :class:`RedirectConfig`; nothing else of httpx's loop is replaced, so
``max_redirects``, ``response.history`` and cookies behave as in httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import httpx
from pydantic import Field

from ._config import AnyCollection, FrozenConfig, construct, defaults
from ._exceptions import RedirectRefusedError, _joined
from ._extensions import CREDENTIAL_HEADERS_KEY, RESIGN_KEY
from ._redact import Redactor

if TYPE_CHECKING:
    from ._environment import EnvironmentSettings

__all__ = [
    "RedirectAction",
    "RedirectConfig",
    "RedirectHooks",
    "client_redirects",
]

RedirectAction: TypeAlias = Literal["get", "keep", "stop"]

_ALWAYS_DROPPED = ("authorization", "x-api-key", "api-key", "x-auth-token")
_REWRITTEN_STATUSES = (301, 302, 303)
_FOLLOWED_SCHEMES = ("http", "https")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """True when ``a`` and ``b`` share scheme, host and port.

    Examples:
        >>> same_origin(httpx.URL("https://a.test/x"), httpx.URL("https://a.test:443/y"))
        True
    """
    return a is b or _origin(a) == _origin(b)  # one URL: every new request's trace asks


def https_upgrade(a: httpx.URL, b: httpx.URL) -> bool:
    """True when ``b`` is ``a``'s host on https at its default port: no other origin to
    httpx, which keeps ``Authorization`` across it, nor to us."""
    return (
        a.scheme == "http"
        and b.scheme == "https"
        and a.host == b.host
        and a.port in (80, None)
        and b.port in (443, None)
    )


def _refused_scheme(
    request: httpx.Request, response: httpx.Response, scheme: str
) -> RedirectRefusedError:
    shown = Redactor.for_request(request).url(request.url)
    # also httpx's UnsupportedProtocol, which bare httpx raises for such a redirect
    return _joined(RedirectRefusedError, httpx.UnsupportedProtocol)(
        f"refused a redirect ({response.status_code}) from {shown} to a URL "
        f"of scheme {scheme[:20]!r}: only http and https redirects are followed",
        request=request,
    )


class RedirectConfig(FrozenConfig):
    """How redirects are followed (whether they are is ``follow_redirects``).

    Attributes:
        allow_cross_origin: follow a redirect to another scheme, host or port.
            ``False`` raises :class:`RedirectRefusedError` instead (an
            ``http`` -> ``https`` upgrade on the same host is still allowed).
        methods: what a request of a given method does on a 301, 302 or 303:
            ``"get"`` re-sends as GET without the body (what browsers and httpx
            do, and what RFC 9110 asks for a 303), ``"keep"`` re-sends the same
            method and body (a 303 still becomes GET), ``"stop"`` follows no
            redirect at all for that method (the 3xx response is returned).
            Methods not listed behave as in httpx: 302 and 303 become GET (HEAD
            stays HEAD), a POST becomes GET on a 301. 307 and 308 always keep
            method and body, unless the method's action is ``"stop"``.
        strip_headers: extra header names dropped when a redirect leaves the
            origin (``Authorization``, ``X-API-Key`` and the headers an auth
            handler used are always dropped).

    Examples:
        >>> RedirectConfig(methods={"POST": "keep"}).action("post")
        'keep'
    """

    allow_cross_origin: bool = True
    methods: Mapping[str, RedirectAction] = Field(default_factory=dict)
    strip_headers: AnyCollection[frozenset[str]] = frozenset()

    def action(self, method: str) -> RedirectAction | None:
        """The configured action for ``method`` (``None``: httpx's default)."""
        if not self.methods:  # the usual case, asked on every request
            return None
        upper: dict[str, RedirectAction] = {
            name.upper(): action for name, action in self.methods.items()
        }
        return upper.get(method.upper())


DEFAULT_REDIRECTS = defaults(RedirectConfig)


def client_redirects(given: RedirectConfig | None, env: EnvironmentSettings) -> RedirectConfig:
    """The client's redirect rules: ``given``, else the environment's, plus its API key header.

    Examples:
        >>> from buttress import ButtressSettings
        >>> env = ButtressSettings(api_key_header="X-Acme-Key")
        >>> sorted(client_redirects(None, env).strip_headers)
        ['X-Acme-Key']
    """
    if given is None:  # values already checked (the environment's when it was read)
        rules = {
            "allow_cross_origin": env.allow_cross_origin_redirects is not False,
            "strip_headers": frozenset({env.api_key_header}),
        }
        return construct(RedirectConfig, rules, given=rules)
    return given.model_copy(update={"strip_headers": given.strip_headers | {env.api_key_header}})


class RedirectHooks:
    """Overrides httpx's redirect hooks with the client's :class:`RedirectConfig`.

    A "stop" action turns following off for the request (in ``send``); the
    other rules run as httpx builds each next request.
    """

    _redirects: RedirectConfig = DEFAULT_REDIRECTS

    def send(self, request: httpx.Request, **kwargs: Any) -> Any:
        """Do not follow redirects for a method whose action is ``"stop"``."""
        if self._redirects.action(request.method) == "stop":
            kwargs["follow_redirects"] = False
        return super().send(request, **kwargs)  # type: ignore[misc]

    def _redirect_url(self, request: httpx.Request, response: httpx.Response) -> httpx.URL:
        try:
            url: httpx.URL = super()._redirect_url(request, response)  # type: ignore[misc]
        except httpx.InvalidURL as exc:  # httpx cannot give "javascript:..." the request's host
            scheme = response.headers["Location"].partition(":")[0]
            raise _refused_scheme(request, response, scheme) from exc
        if url.scheme not in _FOLLOWED_SCHEMES:  # a server must not send us to ftp: or file:
            raise _refused_scheme(request, response, url.scheme)
        refused = not (https_upgrade(request.url, url) or same_origin(request.url, url))
        if refused and not self._redirects.allow_cross_origin:
            redactor = Redactor.for_request(request)
            raise RedirectRefusedError(
                f"refused a cross-origin redirect ({response.status_code}) from "
                f"{redactor.url(request.url)} to {redactor.url(url)}: allow_cross_origin is off",
                request=request,
            )
        return url

    def _redirect_method(self, request: httpx.Request, response: httpx.Response) -> str:
        default: str = super()._redirect_method(request, response)  # type: ignore[misc]
        action = self._redirects.action(request.method)
        if response.status_code not in _REWRITTEN_STATUSES or request.method == "HEAD":
            return default
        if action == "keep" and response.status_code != 303:
            return request.method
        if action == "get":
            return "GET"
        return default

    def _build_redirect_request(
        self, request: httpx.Request, response: httpx.Response
    ) -> httpx.Request:
        following: httpx.Request = super()._build_redirect_request(request, response)  # type: ignore[misc]
        resign = following.extensions.get(RESIGN_KEY)
        if resign is not None:  # a signature covers the URL: the hop's own (AWS SigV4)
            resign(following)
        return following

    def _redirect_headers(
        self, request: httpx.Request, url: httpx.URL, method: str
    ) -> httpx.Headers:
        headers: httpx.Headers = super()._redirect_headers(request, url, method)  # type: ignore[misc]
        if not (same_origin(request.url, url) or https_upgrade(request.url, url)):
            used = request.extensions.get(CREDENTIAL_HEADERS_KEY, ())
            named = (*_ALWAYS_DROPPED, *self._redirects.strip_headers, *used)
            dropped = {name.lower() for name in named}
            # and whatever the request's vocabulary of secrets calls a credential (any
            # X-...-Token, the names the client was told to redact), as logs hide them
            vocabulary = Redactor.for_request(request)
            for name in list(headers.keys()):
                if name in dropped or vocabulary.is_sensitive_header(name):
                    del headers[name]
        return headers
