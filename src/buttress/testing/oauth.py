"""An OAuth 2.0 authorization server inside the demo API, to try OAuth clients against.

It follows the RFCs a client meets (6749 OAuth 2.0, 6750 bearer tokens, 7636
PKCE, 8252 loopback redirects, 8628 device authorization, OpenID Connect
discovery) and keeps every issued token in memory. Consent is given at once
by a demo user, unless the test says otherwise (:attr:`OAuthProvider.consent`).

========================================  =============================================
endpoint                                  what it does
========================================  =============================================
``GET /.well-known/openid-configuration`` the endpoints below, for discovery
``GET /oauth/authorize``                  authorization code with PKCE (S256): redirects
                                          to a loopback ``redirect_uri`` with the code
``POST /oauth/device_authorization``      a device code and a user code (RFC 8628)
``GET /oauth/device?user_code=&deny=``    the page a user opens to approve (or deny)
``POST /oauth/token``                     client credentials, authorization code, refresh
                                          token (rotated) and device code grants
``GET /me``                               a protected resource: who the token is for
========================================  =============================================
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from .._clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from .demo import _Request

__all__ = ["OAuthClient", "OAuthProvider"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_SCOPES = frozenset({"users:read", "users:write"})


@dataclass(frozen=True)
class OAuthClient:
    """A client registered with :class:`OAuthProvider`.

    ``secret=None`` makes a public client (a command-line tool): it proves
    itself with PKCE or a device code instead.

    Examples:
        >>> OAuthClient("reports", "s3cret", grants={"client_credentials"}).grants
        {'client_credentials'}
    """

    client_id: str
    secret: str | None = None
    grants: set[str] = field(default_factory=set)
    scopes: frozenset[str] = _SCOPES

    def __repr__(self) -> str:
        return f"OAuthClient({self.client_id!r}, grants={sorted(self.grants)!r})"


DEMO_CLIENTS = (
    OAuthClient("demo-service", "demo-service-secret", {"client_credentials"}),
    OAuthClient("demo-cli", None, {"authorization_code", "refresh_token", DEVICE_GRANT}),
)
"""The demo API's clients: a confidential service and a public command-line tool."""


@dataclass
class _Issued:
    client_id: str
    scope: str
    audience: str | None
    expires_at: float | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    audience: str | None


@dataclass
class _Device:
    client_id: str
    user_code: str
    scope: str
    audience: str | None
    expires_at: float
    interval: float
    last_poll: float
    decision: bool | None = None  # None: the user has not answered yet
    slow_down: bool = False


class _Refusal(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class OAuthProvider:
    """The demo API's OAuth 2.0 authorization server (see the module docs for its endpoints).

    ``token_requests`` counts the token requests by grant type;
    :meth:`revoke_access_tokens` makes every access token issued so far
    invalid (as a key rotation does), and ``consent`` is the demo user's
    answer on the login page. Time (token lifetimes, device polling) is read
    from ``clock``.

    Examples:
        >>> from buttress.testing import DemoAPI, DemoServer
        >>> import httpx
        >>> with DemoServer(DemoAPI()) as server:
        ...     answer = httpx.post(
        ...         f"{server.url}/oauth/token",
        ...         data={"grant_type": "client_credentials"},
        ...         auth=("demo-service", "demo-service-secret"),
        ...     )
        >>> answer.json()["token_type"], answer.json()["expires_in"]
        ('Bearer', 3600)
    """

    def __init__(
        self,
        *,
        clients: tuple[OAuthClient, ...] = DEMO_CLIENTS,
        token_lifetime: int = 3600,
        device_interval: int = 5,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clients = {client.client_id: client for client in clients}
        self.token_lifetime = token_lifetime
        self.device_interval = device_interval
        self.clock = clock
        self.consent = True
        self.token_requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._access: dict[str, _Issued] = {}
        self._refresh: dict[str, _Issued] = {}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}

    def __repr__(self) -> str:
        return f"OAuthProvider(clients={sorted(self.clients)!r})"

    def reset(self) -> None:
        """Forget every token, code and device issued, and the counts; consent given again.

        Examples:
            >>> provider = OAuthProvider()
            >>> provider.consent = False
            >>> provider.reset()
            >>> provider.consent, sum(provider.token_requests.values())
            (True, 0)
        """
        with self._lock:
            self.consent = True
            self.token_requests.clear()
            for issued in (self._access, self._refresh, self._codes, self._devices):
                issued.clear()

    def revoke_access_tokens(self) -> None:
        """Make every access token issued so far invalid (refresh tokens still work)."""
        with self._lock:
            self._access.clear()

    def revoke_refresh_tokens(self) -> None:
        """Make every refresh token issued so far invalid (as a password change does)."""
        with self._lock:
            self._refresh.clear()

    def slow_down(self, user_code: str) -> None:
        """Ask the device waiting on ``user_code`` to poll 5 s slower, as a busy server does.

        Its next poll is answered ``slow_down`` (RFC 8628 section 3.5).
        """
        with self._lock:
            device = next(d for d in self._devices.values() if d.user_code == user_code)
            device.slow_down = True

    # -- endpoints -------------------------------------------------------------------------

    def discovery(self, issuer: str) -> dict[str, Any]:
        """The OpenID configuration of this server when it is reached at ``issuer``."""
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "client_credentials",
                "authorization_code",
                "refresh_token",
                DEVICE_GRANT,
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "scopes_supported": sorted(_SCOPES),
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, Any], str | None]:
        """(status, JSON error or {}, redirect location) for a login page visit."""
        client = self.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        # RFC 8252 section 7.3: a loopback redirect may use any port.
        if client is None or target.scheme != "http" or target.hostname != "127.0.0.1":
            return (
                400,
                {"error": "invalid_request", "error_description": "bad client or redirect"},
                None,
            )

        def back(**answer: str) -> tuple[int, dict[str, Any], str]:
            state = {"state": query["state"]} if "state" in query else {}
            return 302, {}, f"{redirect_uri}?{urlencode({**answer, **state})}"

        if query.get("response_type") != "code" or "authorization_code" not in client.grants:
            return back(error="unsupported_response_type")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE with S256 is required")
        try:
            scope = self._scope(client, query.get("scope"))
        except _Refusal as refusal:
            return back(error=refusal.error)
        if not self.consent:
            return back(error="access_denied")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client.client_id,
                redirect_uri,
                query["code_challenge"],
                scope,
                query.get("audience"),
            )
        return back(code=code)

    def device_authorization(self, request: _Request, issuer: str) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for a device authorization request (RFC 8628 section 3.1)."""
        form = dict(parse_qsl(request.body.decode("latin-1")))
        try:
            client = self._client(request, form)
            if DEVICE_GRANT not in client.grants:
                raise _Refusal("unauthorized_client", "this client may not use device codes")
            scope = self._scope(client, form.get("scope"))
        except _Refusal as refusal:
            return refusal.status, {
                "error": refusal.error,
                "error_description": refusal.description,
            }
        device_code = secrets.token_urlsafe(24)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        now = self.clock.monotonic()
        with self._lock:
            self._devices[device_code] = _Device(
                client.client_id, user_code, scope, form.get("audience"),
                expires_at=now + 600, interval=self.device_interval, last_poll=now,
            )  # fmt: skip
        page = f"{issuer}/oauth/device"
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?{urlencode({'user_code': user_code})}",
            "expires_in": 600,
            "interval": self.device_interval,
        }

    def device_page(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The user's answer for the device showing ``user_code``."""
        with self._lock:
            for device in self._devices.values():
                if device.user_code == query.get("user_code"):
                    device.decision = query.get("deny") is None and self.consent
                    return 200, {"approved": device.decision}
        return 404, {"error": "invalid_request", "error_description": "unknown user code"}

    def token(self, request: _Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, headers) for a token request."""
        headers = {"cache-control": "no-store", "pragma": "no-cache"}
        form = dict(parse_qsl(request.body.decode("latin-1")))
        grant = form.get("grant_type", "")
        self.token_requests[grant] += 1
        try:
            if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                raise _Refusal("invalid_request", "the body must be form-encoded")
            client = self._client(request, form)
            handler = {
                "client_credentials": self._client_credentials,
                "authorization_code": self._authorization_code,
                "refresh_token": self._refresh_token,
                DEVICE_GRANT: self._device_code,
            }.get(grant)
            if handler is None:
                raise _Refusal("unsupported_grant_type", f"unknown grant_type {grant!r}")
            if grant not in client.grants:
                raise _Refusal("unauthorized_client", f"this client may not use {grant}")
            return 200, handler(client, form), headers
        except _Refusal as refusal:
            if refusal.status == 401 and "authorization" in request.headers:
                headers["www-authenticate"] = 'Basic realm="demo"'
            return refusal.status, refusal.body(), headers

    def resource(self, authorization: str | None) -> tuple[int, dict[str, Any], str | None]:
        """(status, body, WWW-Authenticate) for the protected ``/me``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return 401, {"error": "no bearer token"}, 'Bearer realm="demo"'
        with self._lock:
            issued = self._access.get(token)
        if issued is None or self._expired(issued):
            challenge = 'Bearer realm="demo", error="invalid_token"'
            return 401, {"error": "invalid_token"}, challenge
        body = {"client_id": issued.client_id, "scope": issued.scope, "audience": issued.audience}
        return 200, body, None

    # -- grants ----------------------------------------------------------------------------

    def _client_credentials(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        issued = _Issued(
            client.client_id, self._scope(client, form.get("scope")), form.get("audience")
        )
        return self._issue(issued, refresh=False)

    def _authorization_code(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # a code is used once
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (
            code is None
            or code.client_id != client.client_id
            or code.redirect_uri != form.get("redirect_uri")
            or not secrets.compare_digest(challenge.decode(), code.challenge)
        ):
            raise _Refusal("invalid_grant", "the code, redirect_uri or code_verifier is wrong")
        return self._issue(_Issued(client.client_id, code.scope, code.audience), refresh=True)

    def _refresh_token(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            previous = self._refresh.pop(form.get("refresh_token", ""), None)  # rotated
        if previous is None or previous.client_id != client.client_id:
            raise _Refusal("invalid_grant", "unknown or revoked refresh token")
        scope = form.get("scope", previous.scope)
        if not set(scope.split()) <= set(previous.scope.split()):
            raise _Refusal("invalid_scope", "a refresh cannot widen the scope")
        return self._issue(_Issued(client.client_id, scope, previous.audience), refresh=True)

    def _device_code(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        now = self.clock.monotonic()
        with self._lock:
            device = self._devices.get(form.get("device_code", ""))
            if device is None or device.client_id != client.client_id:
                raise _Refusal("invalid_grant", "unknown device code")
            too_soon = now - device.last_poll < device.interval
            device.last_poll = now
            if device.slow_down or too_soon:
                device.slow_down = False
                device.interval += 5
                raise _Refusal("slow_down", "poll less often")
            if now >= device.expires_at:
                raise _Refusal("expired_token", "the device code expired")
            if device.decision is None:
                raise _Refusal("authorization_pending", "the user has not answered yet")
            del self._devices[form["device_code"]]
        if not device.decision:
            raise _Refusal("access_denied", "the user refused")
        return self._issue(_Issued(client.client_id, device.scope, device.audience), refresh=True)

    # -- helpers ---------------------------------------------------------------------------

    def _client(self, request: _Request, form: dict[str, str]) -> OAuthClient:
        """The authenticated client (RFC 6749 section 2.3: exactly one method)."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            if "client_secret" in form:
                raise _Refusal("invalid_request", "use one client authentication method")
            try:
                pair = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _Refusal("invalid_client", "malformed Basic credentials", 401) from None
            client_id, _, secret = (unquote_plus(part) for part in pair.partition(":"))
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(client_id)
        if client is None:
            raise _Refusal("invalid_client", "unknown client", 401)
        if client.secret is not None and not secrets.compare_digest(secret, client.secret):
            raise _Refusal("invalid_client", "client authentication failed", 401)
        return client

    @staticmethod
    def _scope(client: OAuthClient, requested: str | None) -> str:
        asked = set(requested.split()) if requested else set(client.scopes)
        if not asked <= client.scopes:
            raise _Refusal(
                "invalid_scope", f"not allowed: {' '.join(sorted(asked - client.scopes))}"
            )
        return " ".join(sorted(asked))

    def _expired(self, issued: _Issued) -> bool:
        return issued.expires_at is not None and self.clock.monotonic() >= issued.expires_at

    def _issue(self, issued: _Issued, *, refresh: bool) -> dict[str, Any]:
        issued.expires_at = self.clock.monotonic() + self.token_lifetime
        access = secrets.token_urlsafe(24)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": issued.scope,
        }
        with self._lock:
            self._access[access] = issued
            if refresh:
                body["refresh_token"] = secrets.token_urlsafe(24)
                self._refresh[body["refresh_token"]] = _Issued(
                    issued.client_id, issued.scope, issued.audience
                )
        return body
