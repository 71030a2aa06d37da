"""OAuth 2.0 and OpenID Connect access tokens, fetched and renewed by the auth object itself.

:class:`OAuth2` is a :class:`~buttress.auth.RefreshingAuth` whose refresh asks
an authorization server for a token: with the client's own credentials, a
refresh token, the authorization code of a browser login (PKCE, for
command-line tools) or a device code (RFC 8628, for machines without a
browser). The single-flight refresh, the renewal ahead of expiry and the one
resend after a 401 are the parent's; this module only speaks the protocol.

The protocol is written once, as generators that yield what they need done
(send a request, wait, run a blocking call), and run by a blocking or an
awaiting driver, as the transports' flows are. No OAuth library is used: the
client side is a few form posts, and the libraries that do it (authlib's
httpx clients, httpx-auth) each bring their own token cache and locking, which
would sit beside ours instead of in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import webbrowser
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
import anyio.to_thread
import httpx
from pydantic import SecretStr

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    map_exception,
    status_error_class,
)
from .._flow import Effect, Flow, Outcome, Read, Send, Sleep, adrive, call, drive
from .._redact import Redactor, declare, redact_url
from ..cache.memory import MemoryCache
from ..policies.headers import parse_challenges
from . import RefreshingAuth, Token

if TYPE_CHECKING:
    from ..cache.base import CacheBackend
    from ..transports.cache import CacheTransport

_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_HIDDEN = "'**********'"


class OAuth2Error(AuthenticationError):
    """The authorization server refused to issue a token (RFC 6749 section 5.2).

    ``error`` is the OAuth error code (``invalid_client``, ``invalid_grant``,
    ``access_denied``, ``expired_token``, ...), ``description`` the server's
    ``error_description`` when it gave one.

    Examples:
        >>> from buttress.auth import OAuth2, OAuth2Error
        >>> def fetch(auth: OAuth2) -> None:
        ...     try:
        ...         auth.fetch_token()
        ...     except OAuth2Error as e:
        ...         print(e.error)  # e.g. "invalid_client"
    """

    def __init__(
        self,
        message: str,
        *,
        error: str,
        description: str | None,
        request: httpx.Request,
        response: httpx.Response,
    ) -> None:
        super().__init__(message, request=request, response=response, details=error)
        self.error = error
        self.description = description


# --- what the protocol asks its driver to do --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Post:
    """Send ``request`` to the authorization server; the outcome is the read response.

    A ``cached`` request (the OpenID configuration) passes the auth's own HTTP cache
    first, so it is asked again only when RFC 9111 says the stored answer is stale.
    """

    request: httpx.Request
    cached: bool = False


@dataclass(frozen=True, slots=True)
class _Wait:
    """Wait ``seconds`` on the auth's clock."""

    seconds: float


@dataclass(frozen=True, slots=True)
class _Blocking:
    """Run a blocking ``call`` (in a worker thread under an event loop); outcome: its result."""

    call: Callable[[], Any]


_Step: TypeAlias = "_Post | _Wait | _Blocking"
_Protocol: TypeAlias = "Generator[_Step, Any, Any]"


# --- token persistence ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredToken:
    """What a :class:`TokenStore` keeps: the tokens and when the access token expires.

    ``expires_at`` is seconds since the epoch (it outlives the process).

    Examples:
        >>> StoredToken(SecretStr("at"), SecretStr("rt"), expires_at=1.0)
        StoredToken(access_token='**********', refresh_token='**********', expires_at=1.0)
    """

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: float | None = None

    def __repr__(self) -> str:
        refresh = _HIDDEN if self.refresh_token else "None"
        return (
            f"StoredToken(access_token={_HIDDEN}, refresh_token={refresh}, "
            f"expires_at={self.expires_at!r})"
        )


class TokenStore(Protocol):
    """Where :class:`OAuth2` keeps its tokens between processes.

    ``load`` returns the last saved token (``None`` when there is none);
    ``save`` replaces it. Both run inside the single-flight refresh, so they
    are never called concurrently for one auth object; keep them quick.

    Examples:
        >>> store: TokenStore = MemoryTokenStore()
        >>> store.save(StoredToken(SecretStr("at")))
        >>> store.load() is not None
        True
    """

    def load(self) -> StoredToken | None:
        """The saved token, or ``None``."""
        ...

    def save(self, token: StoredToken) -> None:
        """Keep ``token`` in place of the previous one."""
        ...


class MemoryTokenStore:
    """Tokens kept in memory only: the default (a new process logs in again).

    Examples:
        >>> store = MemoryTokenStore()
        >>> store.load() is None
        True
    """

    def __init__(self) -> None:
        self._token: StoredToken | None = None

    def load(self) -> StoredToken | None:
        return self._token

    def save(self, token: StoredToken) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "MemoryTokenStore()"


class FileTokenStore:
    """Tokens kept in a JSON file that only its owner may read or write (mode 0600).

    The file is written whole to a temporary file beside it, then renamed over
    it, so a crash never leaves half a token.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "token.json"
        >>> store = FileTokenStore(path)
        >>> store.save(StoredToken(SecretStr("at"), SecretStr("rt"), expires_at=2e9))
        >>> oct(path.stat().st_mode & 0o777), store.load()
        ('0o600', StoredToken(access_token='**********', refresh_token='**********', expires_at=2000000000.0))
    """  # noqa: E501

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> StoredToken | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            refresh = data.get("refresh_token")
            return StoredToken(
                SecretStr(data["access_token"]),
                SecretStr(refresh) if refresh else None,
                None if data.get("expires_at") is None else float(data["expires_at"]),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigurationError(
                f"the token file {self.path} is not one buttress wrote; delete it to log in again"
            ) from None

    def save(self, token: StoredToken) -> None:
        data = {
            "access_token": token.access_token.get_secret_value(),
            "refresh_token": token.refresh_token.get_secret_value()
            if token.refresh_token
            else None,
            "expires_at": token.expires_at,
        }
        partial = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(partial, self.path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"


# --- grants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCredentials:
    """Grant: the client authenticates as itself (RFC 6749 section 4.4); service to service.

    Examples:
        >>> auth = OAuth2(ClientCredentials(), token_url="https://id.example.com/token",
        ...               client_id="svc", client_secret="s3cret")
    """

    def _flow(self, oauth: OAuth2, endpoints: Mapping[str, Any]) -> _Protocol:
        return (yield from oauth._token_request(endpoints, {"grant_type": "client_credentials"}))


@dataclass(frozen=True)
class RefreshToken:
    """Grant: a refresh token you already hold (RFC 6749 section 6).

    Examples:
        >>> auth = OAuth2(RefreshToken("rt-from-setup"), client_id="cli",
        ...               token_url="https://id.example.com/token")
    """

    token: str | SecretStr

    def __repr__(self) -> str:
        return f"RefreshToken(token={_HIDDEN})"

    def _flow(self, oauth: OAuth2, endpoints: Mapping[str, Any]) -> _Protocol:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": _nonempty(self.token).get_secret_value(),
        }
        return (yield from oauth._token_request(endpoints, form))


@dataclass(frozen=True)
class AuthorizationCode:
    """Grant: the user logs in with a browser and the code comes back to this machine.

    For command-line tools (RFC 6749 section 4.1 with PKCE, RFC 7636, as RFC
    8252 describes for native apps): a one-shot listener on
    ``http://127.0.0.1:<port><path>`` receives the redirect, ``open_browser``
    (the standard library's :func:`webbrowser.open` by default) shows the
    login page. The server must allow that loopback redirect URI; ``port=0``
    takes any free port. The login fails after ``timeout`` seconds.

    Examples:
        >>> login = AuthorizationCode(port=8765)
        >>> auth = OAuth2(login, client_id="cli", issuer="https://id.example.com")
    """

    open_browser: Callable[[str], object] = webbrowser.open
    port: int = 0
    path: str = "/callback"
    timeout: float = 300.0

    def _flow(self, oauth: OAuth2, endpoints: Mapping[str, Any]) -> _Protocol:
        authorize = _endpoint(endpoints, "authorization_endpoint")
        verifier = secrets.token_urlsafe(64)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(24)
        with _Listener(self.port, self.path, self.timeout, oauth._clock) as listener:
            query = {
                "response_type": "code",
                "client_id": oauth.client_id,
                "redirect_uri": listener.redirect_uri,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
                "state": state,
                **oauth._scope_and_audience(),
            }
            separator = "&" if "?" in authorize else "?"
            self.open_browser(f"{authorize}{separator}{urlencode(query, quote_via=quote)}")
            answer: dict[str, str] = yield _Blocking(listener.wait)
        home = listener.redirect_uri
        if answer.get("state") != state:
            raise _refused("the login redirect came back with another state; try again", home)
        if "error" in answer:  # RFC 6749 section 4.1.2.1
            code = answer["error"]
            raise _refused(f"the login was refused ({code})", home, error=code)
        if not answer.get("code"):
            raise _refused("the login redirect carried no authorization code", home)
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": listener.redirect_uri,
            "code_verifier": verifier,
        }
        return (yield from oauth._token_request(endpoints, form))


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What the user must do to approve a device login (RFC 8628 section 3.2).

    Examples:
        >>> DeviceCodePrompt("https://id.example.com/device", "WDJB-MJHT").user_code
        'WDJB-MJHT'
    """

    verification_uri: str
    user_code: str
    verification_uri_complete: str | None = None
    expires_in: float | None = None


def _print_prompt(prompt: DeviceCodePrompt) -> None:
    print(
        f"To log in, open {prompt.verification_uri} and enter {prompt.user_code}", file=sys.stderr
    )


@dataclass(frozen=True)
class DeviceCode:
    """Grant: approve this machine's login from another device (RFC 8628).

    ``prompt`` tells the user where to go and which code to enter (by default
    a line on standard error); the token endpoint is then polled at the
    interval the server asks for, slower when it says ``slow_down``, until the
    user approves, refuses, or the code expires.

    Examples:
        >>> shown = []
        >>> auth = OAuth2(DeviceCode(prompt=shown.append), client_id="tv",
        ...               issuer="https://id.example.com")
    """

    prompt: Callable[[DeviceCodePrompt], object] = _print_prompt

    def _flow(self, oauth: OAuth2, endpoints: Mapping[str, Any]) -> _Protocol:
        url = _endpoint(endpoints, "device_authorization_endpoint")
        form = {"client_id": oauth.client_id, **oauth._scope_and_audience()}
        request = oauth._form_request(url, form)
        response: httpx.Response = yield _Post(request)
        if response.status_code != 200:
            raise _token_error(request, response, oauth.redactor())
        grant = _json_object(request, response)
        try:
            device_code = str(grant["device_code"])
            prompt = DeviceCodePrompt(
                str(grant["verification_uri"]),
                str(grant["user_code"]),
                grant.get("verification_uri_complete"),
                float(grant["expires_in"]) if "expires_in" in grant else None,
            )
            interval = float(grant.get("interval", 5))
        except (KeyError, TypeError, ValueError):
            raise _malformed(request, response, "a device authorization") from None
        oauth._declare_values(device_code)
        self.prompt(prompt)
        while True:
            yield _Wait(interval)
            try:
                poll = {"grant_type": _DEVICE_GRANT, "device_code": device_code}
                return (yield from oauth._token_request(endpoints, poll))
            except OAuth2Error as error:
                if error.error == "slow_down":
                    interval += 5  # RFC 8628 section 3.5
                elif error.error != "authorization_pending":
                    raise


Grant: TypeAlias = "ClientCredentials | RefreshToken | AuthorizationCode | DeviceCode"


# --- the auth ---------------------------------------------------------------------------------


def _check_arguments(
    grant: Grant,
    client_id: str,
    client_secret: str | SecretStr | None,
    token_url: str | None,
    issuer: str | None,
    client_auth: str,
) -> None:
    """Refuse an :class:`OAuth2` configuration that cannot work, saying why."""
    if not isinstance(grant, ClientCredentials | RefreshToken | AuthorizationCode | DeviceCode):
        raise ConfigurationError(
            f"unknown OAuth2 grant {type(grant).__name__}: give ClientCredentials(), "
            "RefreshToken(token), AuthorizationCode() or DeviceCode()"
        )
    if not client_id:
        raise ConfigurationError("OAuth2 needs a client_id")
    if (token_url is None) == (issuer is None):
        raise ConfigurationError("OAuth2 needs either token_url or issuer (not both)")
    if client_auth not in ("basic", "body"):
        raise ConfigurationError(f"client_auth is 'basic' or 'body', not {client_auth!r}")
    if isinstance(grant, ClientCredentials) and client_secret is None:
        raise ConfigurationError("the client credentials grant needs a client_secret")


class OAuth2(RefreshingAuth):
    """OAuth 2.0 bearer tokens: fetched, renewed before expiry, refreshed once after a 401.

    Give a grant, the client's ``client_id`` (and ``client_secret`` for a
    confidential client), and either the ``token_url`` (plus
    ``authorization_url`` / ``device_authorization_url`` for those grants) or
    an OpenID Connect ``issuer``, whose ``/.well-known/openid-configuration``
    names the endpoints (read once, then kept).

    - ``client_auth``: how a client secret travels (RFC 6749 section 2.3.1),
      ``"basic"`` (HTTP Basic, the default every server must accept) or
      ``"body"`` (``client_id`` and ``client_secret`` form fields).
    - ``scope`` and ``audience``: sent with every token request.
    - ``skew``: renew this many seconds before the token expires.
    - ``store``: a :class:`TokenStore` (in memory by default); a refresh token
      found there is used before the grant.
    - ``http_options``: keyword arguments for the ``httpx`` client that talks
      to the authorization server (``verify=``, ``proxy=``, ``timeout=``).

    Every request carries the current access token. A refresh token, when the
    server issued one, renews it; when the server refuses the refresh token
    (``invalid_grant``) the grant runs again. A 401 whose ``WWW-Authenticate``
    says ``error="invalid_token"`` (or names no error) brings one refresh and
    one resend; other 401s are returned as they are. The token endpoint's
    refusals raise :class:`OAuth2Error` with the OAuth error code. The client
    secret, the tokens and the device code are never shown in reprs, logs or
    messages.

    Examples:
        >>> auth = OAuth2(
        ...     ClientCredentials(),
        ...     token_url="https://id.example.com/oauth/token",
        ...     client_id="reports",
        ...     client_secret="s3cret-value",
        ...     scope=["reports:read"],
        ... )
        >>> auth
        OAuth2(ClientCredentials(), client_id='reports', client_secret='**********')
        >>> auth.redactor().text("secret was s3cret-value")
        'secret was [REDACTED]'
    """

    def __init__(
        self,
        grant: Grant,
        *,
        client_id: str,
        client_secret: str | SecretStr | None = None,
        token_url: str | None = None,
        authorization_url: str | None = None,
        device_authorization_url: str | None = None,
        issuer: str | None = None,
        client_auth: Literal["basic", "body"] = "basic",
        scope: str | Iterable[str] | None = None,
        audience: str | None = None,
        skew: float = 30.0,
        store: TokenStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        http_options: Mapping[str, Any] | None = None,
    ) -> None:
        _check_arguments(grant, client_id, client_secret, token_url, issuer, client_auth)
        self.grant = grant
        self.client_id = client_id
        self.client_secret = None if client_secret is None else _nonempty(client_secret)
        self._client_secrets = [] if self.client_secret is None else [self.client_secret]
        if self.client_secret is not None and client_auth == "basic":
            # RFC 6749 section 2.3.1: each part form-encoded before the Basic encoding
            pair = f"{_form_quote(client_id)}:{_form_quote(self.client_secret)}"
            self._client_secrets.append(SecretStr(base64.b64encode(pair.encode()).decode()))
        self.client_auth = client_auth
        self.issuer = issuer.rstrip("/") if issuer else None
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self._http_options = {"timeout": 30.0, **(http_options or {})}
        self._store_to = store if store is not None else MemoryTokenStore()
        self._endpoints: dict[str, Any] | None = None
        # The OpenID configuration is an HTTP resource like any other: our cache keeps it
        # as long as its Cache-Control allows, then it is asked for again.
        self._discovered = MemoryCache(max_size=4)
        if token_url is not None:
            self._endpoints = {
                "token_endpoint": token_url,
                "authorization_endpoint": authorization_url,
                "device_authorization_endpoint": device_authorization_url,
            }
        self._values_lock = threading.Lock()
        # The tokens held now and just before (a request in flight may still carry those).
        self._recent_secrets: deque[SecretStr] = deque(maxlen=6)
        self._refresh_token: SecretStr | None = None  # the latest the server issued
        if isinstance(grant, RefreshToken):
            self._declare_values(_nonempty(grant.token))
        super().__init__(self._fetch, token=self._saved_token(clock), leeway=skew, clock=clock)

    def _saved_token(self, clock: Clock) -> Token | None:
        """The token the store kept from an earlier run, if any (its secrets declared)."""
        saved = self._store_to.load()
        if saved is None:
            return None
        self._refresh_token = saved.refresh_token
        self._declare_values(saved.access_token, saved.refresh_token)
        left = None if saved.expires_at is None else saved.expires_at - clock.time()
        return Token(saved.access_token, expires_in=left)

    def __repr__(self) -> str:
        secret = f", client_secret={_HIDDEN}" if self.client_secret else ""
        where = f", issuer={self.issuer!r}" if self.issuer else ""
        return f"OAuth2({self.grant!r}, client_id={self.client_id!r}{secret}{where})"

    def redactor(self) -> Redactor:
        """What this auth sends, for redaction: its header, the client secret and every
        token it has held.

        Examples:
            >>> auth = OAuth2(RefreshToken("rt-0123"), client_id="cli", token_url="https://x.test")
            >>> auth.redactor().text("refresh with rt-0123")
            'refresh with [REDACTED]'
        """
        with self._values_lock:
            values = [*self._recent_secrets, *self._client_secrets]
        return Redactor(headers=[self.header], values=values)

    def fetch_token(self) -> None:
        """Get a new token now (a login, for the interactive grants), not at the next request.

        Examples:
            >>> def login(auth: OAuth2) -> None:
            ...     auth.fetch_token()  # opens the browser for AuthorizationCode
        """
        self._refresh_in_thread(self._current()[0])

    async def afetch_token(self) -> None:
        """:meth:`fetch_token` for async code.

        Examples:
            >>> async def login(auth: OAuth2) -> None:
            ...     await auth.afetch_token()
        """
        await self._refresh_in_task(self._current()[0])

    # --- RefreshingAuth hooks

    def _fetch(self) -> Any:
        return _run(self._renew(), self._clock, self._http_options, self._discovered)

    async def _aobtain(self) -> Any:
        return await _arun(self._renew(), self._clock, self._http_options, self._discovered)

    def _rejected(self, response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        error = _bearer_error(response.headers.get_list("www-authenticate"))
        return error is None or error == "invalid_token"

    def _apply(self, request: httpx.Request) -> None:
        super()._apply(request)
        declare(request, self.redactor())  # tokens change: each request names today's

    # --- the protocol

    def _renew(self) -> _Protocol:
        endpoints = yield from self._discover()
        used = self._refresh_token
        if used is not None:
            form = {"grant_type": "refresh_token", "refresh_token": used.get_secret_value()}
            try:
                return (yield from self._token_request(endpoints, form))
            except OAuth2Error as error:
                if error.error != "invalid_grant":
                    raise
                # Expired or revoked: the grant runs again. Only this one is forgotten: a
                # refresh running beside this one may have stored its rotated successor.
                if self._refresh_token is used:
                    self._refresh_token = None
        return (yield from self.grant._flow(self, endpoints))

    def _discover(self) -> Generator[_Step, Any, Mapping[str, Any]]:
        if self.issuer is None:
            assert self._endpoints is not None  # given as token_url= and friends
            return self._endpoints
        url = f"{self.issuer}/.well-known/openid-configuration"
        request = httpx.Request("GET", url, headers={"Accept": "application/json"})
        response = yield _Post(request, cached=True)
        if response.status_code != 200:
            raise status_error_class(max(response.status_code, 400))(
                f"OpenID discovery at {redact_url(url)} answered {response.status_code}",
                request=request,
                response=response,
            )
        metadata = _json_object(request, response)
        issuer = metadata.get("issuer")
        if (
            not isinstance(issuer, str)
            or issuer.rstrip("/") != self.issuer
            or not isinstance(metadata.get("token_endpoint"), str)
        ):
            raise ConfigurationError(
                f"{redact_url(url)} is not the OpenID configuration of "
                f"{redact_url(self.issuer)}: its issuer is "
                f"{metadata.get('issuer')!r} and it must name a token_endpoint"
            )
        return metadata

    def _scope_and_audience(self) -> dict[str, str]:
        extra = {"scope": self.scope} if self.scope else {}
        return {**extra, "audience": self.audience} if self.audience else extra

    def _form_request(self, url: str, form: Mapping[str, str]) -> httpx.Request:
        headers = {"Accept": "application/json"}
        fields = dict(form)
        if self.client_secret is not None and self.client_auth == "basic":
            headers["Authorization"] = f"Basic {self._client_secrets[1].get_secret_value()}"
        else:
            fields["client_id"] = self.client_id
            if self.client_secret is not None:
                fields["client_secret"] = self.client_secret.get_secret_value()
        request = httpx.Request("POST", url, data=fields, headers=headers)
        declare(request, self.redactor())
        return request

    def _token_request(
        self, endpoints: Mapping[str, Any], form: Mapping[str, str]
    ) -> Generator[_Step, Any, Token]:
        fields = dict(form)
        if form["grant_type"] != "refresh_token":
            fields.update(self._scope_and_audience())
        request = self._form_request(_endpoint(endpoints, "token_endpoint"), fields)
        response: httpx.Response = yield _Post(request)
        if response.status_code != 200:
            raise _token_error(request, response, self.redactor())
        issued = _json_object(request, response)
        access, kind = issued.get("access_token"), issued.get("token_type")
        if not isinstance(access, str) or not access or not isinstance(kind, str):
            raise _malformed(request, response, "a token")
        if kind.lower() != "bearer":
            raise AuthenticationError(
                f"{redact_url(request.url)} issued a {kind!r} token; "
                "only bearer tokens are supported",
                request=request,
                response=response,
            )
        try:
            expires_in = issued.get("expires_in")
            lifetime = None if expires_in is None else float(expires_in)
        except (TypeError, ValueError):
            raise _malformed(request, response, "a number in expires_in") from None
        refresh = issued.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._refresh_token = SecretStr(refresh)
        self._declare_values(access, self._refresh_token)
        self._store_to.save(
            StoredToken(
                SecretStr(access),
                self._refresh_token,
                None if lifetime is None else self._clock.time() + lifetime,
            )
        )
        return Token(access, expires_in=lifetime)

    def _declare_values(self, *values: str | SecretStr | None) -> None:
        with self._values_lock:
            for value in values:
                if value:
                    self._recent_secrets.append(_nonempty(value))


# --- helpers ----------------------------------------------------------------------------------


def _nonempty(value: str | SecretStr) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    if not secret.get_secret_value():
        raise ConfigurationError("an empty credential was given")
    return secret


def _form_quote(value: str | SecretStr) -> str:
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    return urlencode({"": plain})[1:]


def _endpoint(endpoints: Mapping[str, Any], name: str) -> str:
    url = endpoints.get(name)
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"this grant needs the server's {name}, and none is known")
    return url


def _bearer_error(values: list[str]) -> str | None:
    """The ``error`` of the ``Bearer`` challenge (RFC 6750 section 3), if it names one.

    A header may carry several challenges (``Basic realm="x", Bearer error="..."``),
    and a quoted parameter may hold ``error=`` itself: only the Bearer challenge's
    own ``error`` parameter counts.
    """
    for value in values:
        for scheme, params in parse_challenges(value):
            if scheme == "bearer":
                return params.get("error")
    return None


def _refused(message: str, url: str, *, error: str | None = None) -> AuthenticationError:
    """A browser login that failed: no server answered us, so the response is a stand-in
    (a 401 to the redirect ``url`` the listener waited on)."""
    request = httpx.Request("GET", url)
    response = httpx.Response(401, request=request)
    if error is None:
        return AuthenticationError(message, request=request, response=response)
    return OAuth2Error(message, error=error, description=None, request=request, response=response)


def _json_object(request: httpx.Request, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _malformed(request, response, "a JSON object")
    return data


def _malformed(request: httpx.Request, response: httpx.Response, what: str) -> Exception:
    return AuthenticationError(
        f"{redact_url(request.url)} answered {response.status_code} without {what}",
        request=request,
        response=response,
    )


def _token_error(request: httpx.Request, response: httpx.Response, redactor: Redactor) -> Exception:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        code = data["error"]
        description = data.get("error_description")
        description = redactor.text(description) if isinstance(description, str) else None
        said = f": {description}" if description else ""
        return OAuth2Error(
            f"{redact_url(request.url)} refused to issue a token ({code}){said}",
            error=code,
            description=description,
            request=request,
            response=response,
        )
    return status_error_class(max(response.status_code, 400))(
        f"{redact_url(request.url)} answered {response.status_code} to a token request",
        request=request,
        response=response,
    )


# --- the drivers ------------------------------------------------------------------------------


class _Through(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The auth's own client as a transport, so a request can pass our cache on its way."""

    def __init__(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._http = http

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._http, httpx.Client)
        return self._http.send(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._http, httpx.AsyncClient)
        return await self._http.send(request)


def _transports(
    http: httpx.Client | httpx.AsyncClient, cache: CacheBackend, clock: Clock
) -> tuple[_Through, CacheTransport]:
    """The auth's own client as a transport, and our cache in front of it."""
    from ..cache import CacheConfig
    from ..transports.cache import CacheTransport

    through = _Through(http)
    return through, CacheTransport(through, CacheConfig(backend=cache), clock=clock)


def _fetched(request: httpx.Request) -> Flow:
    """One request of a protocol, its body read; httpx's transport errors raised as buttress's."""
    outcome = yield Send(request)
    if isinstance(outcome, httpx.Response):
        outcome = yield Read(outcome)
    if isinstance(outcome, httpx.TransportError):
        raise map_exception(outcome, request) from outcome
    if isinstance(outcome, Exception):
        raise outcome
    assert isinstance(outcome, httpx.Response)
    return outcome


def _effects(
    protocol: _Protocol, through: _Through, cached: CacheTransport, clock: Clock
) -> Generator[Effect, Outcome, Any]:
    """``protocol``'s steps as the drivers' effects: a POST is a flow of its own, driven
    through the cache or past it, and a blocking call runs in a worker thread under a loop."""
    outcome: Any = None
    with closing(protocol):
        while True:
            try:
                step = protocol.send(outcome)
            except StopIteration as done:
                return done.value
            if isinstance(step, _Post):
                transport = cached if step.cached else through
                fetched = _fetched(step.request)
                blocking = partial(drive, fetched, transport, clock)
                outcome = yield from call(blocking, partial(adrive, fetched, transport, clock))
            elif isinstance(step, _Wait):
                outcome = yield Sleep(step.seconds)
            else:
                in_thread = partial(anyio.to_thread.run_sync, step.call, abandon_on_cancel=True)
                outcome = yield from call(step.call, in_thread)


def _run(protocol: _Protocol, clock: Clock, options: Mapping[str, Any], cache: CacheBackend) -> Any:
    with httpx.Client(**options) as http:
        through, cached = _transports(http, cache, clock)
        return drive(_effects(protocol, through, cached, clock), through, clock)


async def _arun(
    protocol: _Protocol, clock: Clock, options: Mapping[str, Any], cache: CacheBackend
) -> Any:
    async with httpx.AsyncClient(**options) as http:
        through, cached = _transports(http, cache, clock)
        return await adrive(_effects(protocol, through, cached, clock), through, clock)


# --- the loopback redirect listener -----------------------------------------------------------


class _Listener:
    """A one-shot HTTP server on 127.0.0.1 that waits for the login redirect."""

    def __init__(self, port: int, path: str, timeout: float, clock: Clock) -> None:
        self.path, self.timeout, self._clock = path, timeout, clock
        self._deadline = clock.monotonic() + timeout  # from before the browser opens
        from http.server import BaseHTTPRequestHandler, HTTPServer  # only a login needs it

        self.answer: dict[str, str] | None = None
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = urlsplit(self.path)
                if target.path != listener.path:
                    self.send_error(404)
                    return
                listener.answer = {k: v[0] for k, v in parse_qs(target.query).items()}
                body = b"<!doctype html><p>Login complete. You can close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query holds the code: never printed

        try:
            self._server = HTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            message = f"cannot listen on 127.0.0.1:{port} for the login: {exc}"
            raise ConfigurationError(message) from exc
        self._server.timeout = 0.2
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._closed = threading.Event()

    def wait(self) -> dict[str, str]:
        """Serve until the redirect arrives, the listener closes or ``timeout`` passes."""
        while self.answer is None and not self._closed.is_set():
            if self._clock.monotonic() >= self._deadline:
                message = f"no login redirect arrived within {self.timeout:g} s"
                raise _refused(message, self.redirect_uri)
            try:
                self._server.handle_request()
            except (OSError, ValueError):  # closed under us: the login was abandoned
                break
        if self.answer is None:
            raise _refused("the login was abandoned", self.redirect_uri)
        return self.answer

    def __enter__(self) -> _Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.server_close()
