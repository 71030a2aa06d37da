"""The bottom of the stack: TLS, HTTP/2 and proxy routing.

:func:`build_network` turns the client's connection options into one
:class:`NetworkTransport`. It sits *beneath* every buttress layer (the facade
wraps it in ``stack(...)``), so retries, the breaker and the limiter apply to
direct and proxied requests alike.

Routing, for each request, first rule that applies:

1. the request's own ``proxy`` option (``buttress.options(proxy=...)`` or the
   ``proxy=`` keyword of a call); ``False`` means "go direct";
2. a host in ``proxy_bypass`` (or in ``NO_PROXY`` when proxies come from the
   environment) goes direct;
3. the client's ``proxy``; or, when it is not given and ``trust_env`` is on,
   ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` by the URL's scheme.

One connection pool exists per route (direct, or one per proxy URL) and is
kept for the client's life, so a per-request override reuses its pooled
connections instead of building a client per call.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import threading
import urllib.request
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

import httpx

from .._clock import SYSTEM_CLOCK
from .._exceptions import ConfigurationError, ConnectionError, _joined
from .._flow import Effect, Outcome, Read, Send, adrive, drive
from .._options import RequestOptions
from .backends import check_backend_supports

if TYPE_CHECKING:
    from .._environment import EnvironmentSettings

__all__ = [
    "CertTypes",
    "NetworkTransport",
    "ProxyOption",
    "ProxyTypes",
    "TLSVersion",
    "build_network",
    "connection_options",
    "environment_proxies",
    "from_httpx_proxy",
    "ssl_context",
]

TLSVersion: TypeAlias = Literal["1.2", "1.3"]
CertTypes: TypeAlias = "str | tuple[str, str] | tuple[str, str, str]"
ProxyTypes: TypeAlias = "str | httpx.URL"
ProxyOption: TypeAlias = "str | httpx.URL | Literal[False] | None"
"""A proxy URL, ``False`` (no proxy) or ``None`` (the default routing)."""

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")
_VERSION_REFUSALS = ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE")
_DIRECT = "direct"


def ssl_context(
    verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
    *,
    cert: CertTypes | None = None,
    min_tls_version: TLSVersion | None = None,
    trust_env: bool = True,
) -> ssl.SSLContext:
    """The TLS settings as one ``ssl.SSLContext``.

    ``verify`` is ``True`` (certifi's bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when ``trust_env``), ``False``, a CA bundle file or
    directory, or a ready context (used as is; see :func:`_given_context` for
    ``cert`` and ``min_tls_version`` on it). ``cert`` is a client certificate
    for mTLS: a PEM path holding certificate and key, ``(cert, key)`` or
    ``(cert, key, password)``.

    Examples:
        >>> ssl_context(min_tls_version="1.3").minimum_version.name
        'TLSv1_3'
    """
    if min_tls_version is not None and min_tls_version not in _TLS_VERSIONS:
        raise ConfigurationError(f"min_tls_version must be '1.2' or '1.3', not {min_tls_version!r}")
    if isinstance(verify, ssl.SSLContext):
        return _given_context(verify, cert, min_tls_version)
    if isinstance(verify, bool):
        context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
    elif isinstance(verify, str | os.PathLike):
        path = Path(verify)
        if not path.exists():
            raise ConfigurationError(f"verify_ssl: no CA bundle at {str(path)!r}")
        context = (
            ssl.create_default_context(capath=path)
            if path.is_dir()
            else ssl.create_default_context(cafile=path)
        )
    else:
        raise ConfigurationError(
            f"verify_ssl must be a bool, a CA bundle path or an ssl.SSLContext, "
            f"not {type(verify).__name__}"
        )
    _apply(context, cert, min_tls_version)
    return context


def _apply(context: ssl.SSLContext, cert: CertTypes | None, version: TLSVersion | None) -> None:
    if cert is not None:
        try:
            if isinstance(cert, str):
                context.load_cert_chain(cert)
            else:
                context.load_cert_chain(*cert)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the client certificate: {exc}") from None
    if version is not None:
        context.minimum_version = _TLS_VERSIONS[version]


_APPLIED: weakref.WeakKeyDictionary[ssl.SSLContext, CertTypes | None] = weakref.WeakKeyDictionary()
"""The caller's contexts that a client was built on, with the certificate buttress loaded."""
_APPLIED_LOCK = threading.Lock()


def _given_context(
    context: ssl.SSLContext, cert: CertTypes | None, version: TLSVersion | None
) -> ssl.SSLContext:
    """The caller's own context, changed only before the first client is built on it.

    ``cert`` and ``min_tls_version`` are applied to it then. A context cannot be
    copied faithfully (its trust store, ALPN or callbacks cannot be read back), and
    changing it later would change every client already using it (the original of
    a ``with_options`` copy would present the copy's certificate): a later client
    asking for another certificate or minimum version is refused.
    """
    with _APPLIED_LOCK:
        if context not in _APPLIED:
            _apply(context, cert, version)
            _APPLIED[context] = cert
            return context
        changes = []
        if cert is not None and cert != _APPLIED[context]:
            changes.append("cert")
        if version is not None and context.minimum_version != _TLS_VERSIONS[version]:
            changes.append("min_tls_version")
    if changes:
        raise ConfigurationError(
            f"cannot apply {' and '.join(changes)} to the ssl.SSLContext given as verify: a "
            "client already uses that context, and changing it would change that client too; "
            "pass a new ssl.SSLContext with the certificate loaded (load_cert_chain) and its "
            "minimum_version set"
        )
    return context


def require_http2() -> None:
    """Fail clearly when HTTP/2 is asked for but ``h2`` is missing."""
    try:
        import h2  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "http2=True needs the h2 package: pip install 'buttress[http2]'"
        ) from None


def environment_proxies() -> tuple[dict[str, str], tuple[str, ...]]:
    """``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (any case), read as httpx.

    Returns ``({"http": url, "https": url, "all": url}, no_proxy_entries)``. A
    proxy given without a scheme (``127.0.0.1:3128``) is an ``http://`` proxy;
    ``*`` among the ``NO_PROXY`` entries turns the proxies off.

    Examples:
        >>> import os
        >>> os.environ["HTTPS_PROXY"], os.environ["NO_PROXY"] = "p:3128", "a.test,b.test"
        >>> environment_proxies()
        ({'https': 'http://p:3128'}, ('a.test', 'b.test'))
        >>> del os.environ["HTTPS_PROXY"], os.environ["NO_PROXY"]
    """
    found = urllib.request.getproxies_environment()
    no_proxy = tuple(h.strip() for h in found.get("no", "").split(",") if h.strip())
    if "*" in no_proxy:
        return {}, ()
    proxies = {
        scheme: url if "://" in url else f"http://{url}"
        for scheme in ("http", "https", "all")
        if (url := found.get(scheme))
    }
    return proxies, no_proxy


def bypasses(host: str, patterns: Iterable[str]) -> bool:
    """True when ``host`` matches a ``proxy_bypass`` pattern.

    A pattern is ``*`` (every host), a host name (also matching its
    subdomains; a leading ``.`` or ``*.`` is allowed) or an IP address.
    (``NO_PROXY`` entries are read as httpx reads them: see :class:`_Pattern`.)

    Examples:
        >>> bypasses("api.internal.test", ["internal.test"])
        True
        >>> bypasses("notinternal.test", ["internal.test"])
        False
    """
    host = host.lower().rstrip(".")
    for pattern in patterns:
        name = pattern.lower().strip().removeprefix("*").lstrip(".")
        if pattern.strip() == "*" or host == name or host.endswith("." + name):
            return True
    return False


class _Pattern:
    """A URL pattern matched as httpx matches the keys of its mounts.

    ``all://`` or ``http://`` (a scheme), ``all://host``, ``all://*domain`` (the
    domain and its subdomains), ``all://*.domain`` (subdomains only), each with an
    optional ``:port`` compared with the URL's port as httpx gives it (``None``
    for the scheme's default port).

    Examples:
        >>> _Pattern("all://*example.com").matches(httpx.URL("https://www.example.com"))
        True
        >>> _Pattern("all://*127.0.0.1:8080").matches(httpx.URL("http://127.0.0.1"))
        False
    """

    __slots__ = ("host", "port", "regex", "scheme")

    def __init__(self, key: str) -> None:
        url = httpx.URL(key)  # raises httpx.InvalidURL where httpx's own mounts would
        self.scheme = "" if url.scheme == "all" else url.scheme
        self.host = "" if url.host == "*" else url.host
        self.port = url.port
        self.regex: re.Pattern[str] | None = None
        if self.host.startswith("*."):
            self.regex = re.compile(f"^.+\\.{re.escape(self.host[2:])}$")
        elif self.host.startswith("*"):
            self.regex = re.compile(f"^(.+\\.)?{re.escape(self.host[1:])}$")
        elif self.host:
            self.regex = re.compile(f"^{re.escape(self.host)}$")

    def matches(self, url: httpx.URL) -> bool:
        return (
            (not self.scheme or self.scheme == url.scheme)
            and (self.regex is None or self.regex.match(url.host) is not None)
            and (self.port is None or self.port == url.port)
        )

    @property
    def priority(self) -> tuple[int, int, int]:
        """httpx's order: a pattern with a port first, then longer hosts, then longer schemes."""
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))


def _no_proxy_key(entry: str) -> str:
    """A ``NO_PROXY`` entry as the URL pattern httpx makes of it (see curl's ``NOPROXY``)."""
    if "://" in entry:
        return entry
    address = entry.split("/")[0]
    for kind, template in (
        (ipaddress.IPv4Address, "all://{}"),
        (ipaddress.IPv6Address, "all://[{}]"),
    ):
        try:
            kind(address)
        except ValueError:
            continue
        return template.format(entry)
    return f"all://{entry}" if entry.lower() == "localhost" else f"all://*{entry}"


def _proxy_table(
    proxies: Mapping[str, httpx.URL], no_proxy: Iterable[str]
) -> list[tuple[_Pattern, httpx.URL | None]]:
    """The proxy for each URL pattern (``None``: direct), in httpx's order: most specific first."""
    if not proxies:
        return []
    keyed: dict[str, tuple[str, httpx.URL | None]] = {
        f"{scheme}://": (scheme, url) for scheme, url in proxies.items()
    }
    for entry in no_proxy:
        keyed[_no_proxy_key(entry)] = (entry, None)
    table = []
    for key, (entry, url) in keyed.items():
        try:
            table.append((_Pattern(key), url))
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"NO_PROXY: cannot read {entry!r} ({exc})") from None
    return sorted(table, key=lambda row: row[0].priority)


def shown(proxy: httpx.URL) -> str:
    """A proxy URL fit for logs and messages: its password replaced.

    The user name is shown as sent (percent-encoded) when a password follows it;
    userinfo with no password is hidden whole: it is a token sent as a user name,
    or a name whose colon was percent-encoded.

    Examples:
        >>> shown(httpx.URL("http://bob:hunter2@proxy.test:3128"))
        'http://bob:[REDACTED]@proxy.test:3128'
        >>> shown(httpx.URL("http://bob%3Ahunter2@proxy.test:3128"))
        'http://[REDACTED]@proxy.test:3128'
    """
    if not proxy.userinfo:
        return str(proxy)
    port = f":{proxy.port}" if proxy.port else ""
    name, colon, _ = proxy.userinfo.decode("ascii", "replace").partition(":")
    userinfo = f"{name}:[REDACTED]" if colon else "[REDACTED]"
    return f"{proxy.scheme}://{userinfo}@{proxy.host}{port}"


def from_httpx_proxy(proxy: httpx.Proxy) -> httpx.URL:
    """An ``httpx.Proxy`` as the proxy URL buttress routes by, credentials in its userinfo.

    Custom proxy headers and a proxy-only ``ssl_context`` have no equivalent here
    (an ``https://`` proxy is verified with the client's TLS settings) and are
    refused rather than dropped.

    Examples:
        >>> shown(from_httpx_proxy(httpx.Proxy("http://proxy.test:3128", auth=("bob", "pw"))))
        'http://bob:[REDACTED]@proxy.test:3128'
    """
    if proxy.headers or proxy.ssl_context is not None:
        raise ConfigurationError(
            "httpx.Proxy(headers=...) and httpx.Proxy(ssl_context=...) are not supported: "
            "give the proxy URL (credentials in it or in auth=); an https:// proxy is "
            "verified with the client's verify="
        )
    if proxy.auth is None:
        return proxy.url
    username, password = proxy.auth
    return proxy.url.copy_with(username=username, password=password)


def _proxy_url(value: ProxyTypes) -> httpx.URL:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:  # its message names the part, never the whole URL
        raise ConfigurationError(f"the proxy is not a valid URL: {exc}") from None
    if url.scheme not in _PROXY_SCHEMES or not url.host:
        raise ConfigurationError(
            f"unsupported proxy {shown(url)!r}: give http://, https:// or socks5:// with a host"
        )
    return url


class _ProxyDigest(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers a proxy's ``407`` Digest challenge once (HTTP targets: forward proxying)."""

    def __init__(self, inner: Any, username: str, password: str) -> None:
        self._inner = inner
        self._digest = httpx.DigestAuth(username, password)  # its challenge parser and hasher
        self._challenge: Any = None  # the last accepted challenge, answered up front
        self._lock = threading.Lock()  # the nonce count must not repeat across threads

    def _answer(self, request: httpx.Request) -> None:
        with self._lock:
            header = self._digest._build_auth_header(request, self._challenge)
        request.headers["Proxy-Authorization"] = header

    def _flow(self, request: httpx.Request) -> Generator[Effect, Outcome, httpx.Response]:
        if self._challenge is not None:
            self._answer(request)
        outcome = yield Send(request)
        if isinstance(outcome, Exception):
            raise outcome
        response = cast(httpx.Response, outcome)
        challenge = response.headers.get("Proxy-Authenticate", "")
        if response.status_code != 407 or not challenge.lower().startswith("digest"):
            return response
        yield Read(response)  # reading to the end also releases the connection
        self._challenge = self._digest._parse_challenge(request, response, challenge)
        self._answer(request)
        outcome = yield Send(request)
        if isinstance(outcome, Exception):
            raise outcome
        return cast(httpx.Response, outcome)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return drive(self._flow(request), self._inner, SYSTEM_CLOCK)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await adrive(self._flow(request), self._inner, SYSTEM_CLOCK)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


class NetworkTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Routes each request direct or through a proxy, one pooled transport per route.

    ``connect(proxy_url)`` builds the transport for a route (``None``: direct);
    it is called at most once per route. ``proxies`` maps a URL scheme
    (``http``, ``https`` or ``all``) to a proxy URL; hosts matching ``bypass``
    go direct, and so do URLs matching a ``no_proxy`` entry (``NO_PROXY``, read
    as httpx reads it). Proxy credentials never appear in its repr or its errors.

    Examples:
        >>> network = NetworkTransport(lambda proxy: httpx.HTTPTransport(proxy=proxy))
        >>> network
        NetworkTransport(proxies={}, bypass=())
        >>> network.close()
    """

    def __init__(
        self,
        connect: Callable[[httpx.URL | None], Any],
        *,
        proxies: Mapping[str, ProxyTypes] | None = None,
        bypass: Iterable[str] = (),
        no_proxy: Iterable[str] = (),
        min_tls_version: TLSVersion | None = None,
    ) -> None:
        self._connect = connect
        self._proxies = {scheme: _proxy_url(url) for scheme, url in (proxies or {}).items()}
        self._bypass = tuple(bypass)
        self._table = _proxy_table(self._proxies, no_proxy)
        self._min_tls_version = min_tls_version
        self._routes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        proxies = {scheme: shown(url) for scheme, url in self._proxies.items()}
        return f"NetworkTransport(proxies={proxies}, bypass={self._bypass})"

    def proxy_for(self, request: httpx.Request) -> httpx.URL | None:
        """The proxy ``request`` goes through, or ``None`` for a direct connection.

        Examples:
            >>> network = NetworkTransport(
            ...     lambda proxy: httpx.HTTPTransport(proxy=proxy),
            ...     proxies={"all": "http://p:1"},
            ...     bypass=["internal.test"],
            ... )
            >>> str(network.proxy_for(httpx.Request("GET", "https://api.test/")))
            'http://p:1'
            >>> network.proxy_for(httpx.Request("GET", "https://db.internal.test/")) is None
            True
        """
        override = RequestOptions.of(request).proxy
        if override is False:
            return None
        if override is not None:
            return _proxy_url(override)
        if not self._table or bypasses(request.url.host, self._bypass):
            return None
        for pattern, proxy in self._table:
            if pattern.matches(request.url):
                return proxy
        return None

    def _route(self, request: httpx.Request) -> Any:
        proxy = self.proxy_for(request)
        key = _DIRECT if proxy is None else str(proxy)
        with self._lock:
            transport = self._routes.get(key)
            if transport is None:
                transport = self._connect(proxy)
                if proxy is not None and proxy.scheme in ("http", "https") and proxy.username:
                    transport = _ProxyDigest(transport, proxy.username, proxy.password or "")
                self._routes[key] = transport
        return transport

    def _explain(self, exc: httpx.TransportError, request: httpx.Request) -> Exception:
        """A clear message when the server will not speak our minimum TLS version."""
        text, cause = "", cast(BaseException | None, exc)
        while cause is not None:  # the async stack wraps the ssl error more deeply
            text += f" {cause!r}"
            cause = cause.__cause__ or cause.__context__
        version = self._min_tls_version
        if version is None:
            return exc
        if any(marker in text for marker in _VERSION_REFUSALS):
            why = f"the server does not offer TLS {version} or newer"
        elif "UNEXPECTED_EOF" in text:  # servers often hang up instead of sending an alert
            why = f"the server ended the handshake, most likely as it lacks TLS {version} or newer"
        else:
            return exc
        error: Any = _joined(ConnectionError, cast(Any, type(exc)))  # and httpx.ConnectError
        return cast(
            Exception,
            error(
                f"TLS handshake with {request.url.host}:{request.url.port or 443} failed: "
                f"{why} (min_tls_version={version!r})",
                request=request,
            ),
        )

    def _translate(self, exc: Exception, request: httpx.Request) -> Exception:
        if isinstance(exc, httpx.ConnectError):
            return self._explain(exc, request)
        if isinstance(exc, httpx.ProxyError) and str(exc).startswith("407"):
            proxy = self.proxy_for(request)
            return httpx.ProxyError(
                f"{shown(proxy) if proxy else 'the proxy'} refused to open a tunnel to "
                f"{request.url.host} (407 Proxy Authentication Required): wrong credentials, "
                "or a scheme other than Basic, which tunnels do not support",
                request=request,
            )
        if type(exc).__module__.startswith("python_socks"):  # httpx-socks (SOCKS4) lets these out
            proxy = self.proxy_for(request)
            where = shown(proxy) if proxy is not None else "the SOCKS proxy"
            return httpx.ProxyError(f"{where}: {exc}", request=request)
        return exc

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return cast(httpx.Response, self._route(request).handle_request(request))
        except Exception as exc:
            translated = self._translate(exc, request)
            if translated is exc:
                raise
            raise translated from exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return cast(httpx.Response, await self._route(request).handle_async_request(request))
        except Exception as exc:
            translated = self._translate(exc, request)
            if translated is exc:
                raise
            raise translated from exc

    def _take_routes(self) -> list[Any]:
        with self._lock:
            routes, self._routes = list(self._routes.values()), {}
        return routes

    def close(self) -> None:
        for transport in self._take_routes():
            transport.close()

    async def aclose(self) -> None:
        for transport in self._take_routes():
            await transport.aclose()


_NATIVE_SOCKS = ("socks5", "socks5h")
"""httpx's own SOCKS5 (with socksio); it sends host names for the proxy to resolve."""


def _check_proxy(backend: str, proxy: httpx.URL) -> None:
    """Refuse a proxy the backend cannot reach, then one whose package is not installed.

    In that order: installing a package would not help the first.
    """
    check_backend_supports(backend, proxy=proxy)
    if proxy.scheme.startswith("socks"):
        _require_socks(proxy.scheme)


def _require_socks(scheme: str) -> None:
    """A clear error naming the extra, rather than an ImportError on the first request."""
    if scheme in _NATIVE_SOCKS:
        package, extra = "socksio", "socks"
    else:
        package, extra = "httpx_socks", "socks4"
    try:
        __import__(package)
    except ImportError:
        raise ConfigurationError(
            f"{scheme}:// proxies need {package.replace('_', '-')}: pip install 'buttress[{extra}]'"
        ) from None


def _socks4_transport(proxy: httpx.URL, asynchronous: bool, **options: Any) -> Any:
    """SOCKS4 through httpx-socks (httpx has none; socks4a: names resolved at the proxy)."""
    import httpx_socks

    factory = httpx_socks.AsyncProxyTransport if asynchronous else httpx_socks.SyncProxyTransport
    url = str(proxy.copy_with(scheme="socks4"))  # httpx-socks reads credentials from the URL
    return factory.from_url(url, rdns=proxy.scheme == "socks4a", **options)


def build_network(
    factory: Callable[..., Any],
    *,
    asynchronous: bool,
    verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
    cert: CertTypes | None = None,
    min_tls_version: TLSVersion | None = None,
    http1: bool = True,
    http2: bool = False,
    limits: httpx.Limits = httpx.Limits(),  # noqa: B008 - immutable
    trust_env: bool = True,
    proxy: ProxyTypes | Literal[False] | None = None,
    proxy_bypass: Iterable[str] = (),
) -> NetworkTransport:
    """Build the client's network transport from its connection options.

    ``factory`` makes a direct or HTTP-proxy transport (``httpx.HTTPTransport``
    or ``httpx.AsyncHTTPTransport``), SOCKS5 proxies included; SOCKS4 uses httpx-socks.
    ``proxy=None`` takes proxies from the environment when ``trust_env``;
    ``proxy=False`` never uses a proxy (a call may still ask for one).
    ``http1`` and ``http2`` mean what they mean to httpx: ``http1=False,
    http2=True`` speaks HTTP/2 only.

    Examples:
        >>> network = build_network(httpx.HTTPTransport, asynchronous=False, proxy=False)
        >>> network.proxy_for(httpx.Request("GET", "https://api.test/")) is None
        True
        >>> network.close()
    """
    if not (http1 or http2):
        raise ConfigurationError("http1=False needs http2=True: a client must speak some HTTP")
    if http2:
        require_http2()
    context = ssl_context(verify, cert=cert, min_tls_version=min_tls_version, trust_env=trust_env)
    backend = getattr(factory, "buttress_backend", "httpx")
    proxies, bypass, no_proxy = _routes(proxy, trust_env, proxy_bypass)
    for url in proxies.values():  # fail as the client is built, not on its first request
        _check_proxy(backend, _proxy_url(url))

    def connect(proxy_url: httpx.URL | None) -> Any:
        options: dict[str, Any] = {"verify": context, "limits": limits}
        options.update(http1=http1, http2=http2)
        if proxy_url is not None:  # a call's own proxy is first seen here
            _check_proxy(backend, proxy_url)
        if proxy_url is not None and proxy_url.scheme in ("socks4", "socks4a"):
            return _socks4_transport(proxy_url, asynchronous, **options)
        proxy_config = None if proxy_url is None else _proxy_config(proxy_url, context)
        return factory(**options, trust_env=trust_env, proxy=proxy_config)

    return NetworkTransport(
        connect,
        proxies=proxies,
        bypass=bypass,
        no_proxy=no_proxy,
        min_tls_version=min_tls_version,
    )


def _routes(
    proxy: ProxyTypes | Literal[False] | None, trust_env: bool, proxy_bypass: Iterable[str]
) -> tuple[dict[str, ProxyTypes], list[str], tuple[str, ...]]:
    """The proxy for each URL scheme, the hosts that go direct, and the ``NO_PROXY`` entries."""
    proxies: dict[str, ProxyTypes] = {}
    no_proxy: tuple[str, ...] = ()
    if proxy is None and trust_env:
        env_proxies, no_proxy = environment_proxies()
        proxies = dict(env_proxies)
    elif proxy is not None and proxy is not False:
        proxies = {"all": proxy}
    return proxies, list(proxy_bypass), no_proxy


def _proxy_config(proxy_url: httpx.URL, context: ssl.SSLContext) -> httpx.Proxy:
    """httpx's proxy for ``proxy_url`` (an HTTP, HTTPS or SOCKS5 proxy)."""
    if proxy_url.scheme in _NATIVE_SOCKS:
        # One behaviour on every httpx: the proxy resolves names (httpx < 0.28 lacks socks5h).
        return httpx.Proxy(proxy_url.copy_with(scheme="socks5"))
    if proxy_url.scheme == "https":
        # An https:// proxy is verified with the same TLS settings as the servers.
        return httpx.Proxy(proxy_url, ssl_context=context)
    return httpx.Proxy(proxy_url)


def connection_options(env: EnvironmentSettings, given: Mapping[str, Any]) -> dict[str, Any]:
    """The client's connection arguments, with the environment filling what was not given.

    ``given`` holds only the arguments the caller passed (``verify``, ``cert``,
    ``min_tls_version``, ``http2``, ``proxy``, ``proxy_bypass``). An ``httpx.Proxy``
    becomes its URL, credentials included (see :func:`from_httpx_proxy`).

    Examples:
        >>> from buttress import ButtressSettings
        >>> connection_options(ButtressSettings(http2=False), {"proxy": False})["proxy"]
        False
    """
    cert: CertTypes | None = None
    if env.client_cert:
        cert = (env.client_cert, env.client_key) if env.client_key else env.client_cert
    bypass = [h.strip() for h in (env.proxy_bypass or "").split(",") if h.strip()]
    verify = given.get("verify", True)
    if verify is True and env.ca_bundle:
        verify = env.ca_bundle
    resolved: dict[str, Any] = {
        "verify": verify,
        "cert": cert,
        "min_tls_version": env.min_tls_version,
        "http2": bool(env.http2),
        "proxy": env.proxy.get_secret_value() if env.proxy else None,
        "proxy_bypass": bypass,
    }
    resolved.update({k: v for k, v in given.items() if k != "verify"})
    if isinstance(resolved["proxy"], httpx.Proxy):
        resolved["proxy"] = from_httpx_proxy(resolved["proxy"])
    return resolved
