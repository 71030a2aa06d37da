"""AWS Signature Version 4: sign each request, and sign it again on every retry.

The algorithm is AWS's published one (the canonical request, the string to
sign, an HMAC-SHA256 key derived from the secret, the date, the region and the
service). Two choices are ours:

- the query is re-encoded on the wire with RFC 3986's strict rules (httpx
  writes a space as ``+``), so what is signed is exactly what the server reads;
- a body already in memory is hashed; a streamed body (a generator, a file)
  is signed as ``UNSIGNED-PAYLOAD`` instead of being read twice.

A signature carries its time (``X-Amz-Date``) and AWS refuses one that is too
old. httpx runs auth once per call, above every transport and around its
redirects, but the retry layer sends the same request again after a backoff,
and httpx sends a redirect hop with the headers of the request before it; so the
signer leaves a re-signer in the request's :data:`~buttress._options.RESIGN_KEY`
extension, which the retry layer calls before each attempt and the client before
each hop. It signs a retry's headers again with a fresh date, and a hop to the
same origin anew; a hop to another origin is left without credentials.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import weakref
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError
from .._extensions import RESIGN_KEY
from .._redact import Redactor, mark_credential_headers
from .._redirects import https_upgrade, same_origin

__all__ = ["AWSSigV4"]

ALGORITHM = "AWS4-HMAC-SHA256"
_CONTENT_HASH = "X-Amz-Content-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Never signed: hop-by-hop headers a proxy may change, headers buttress rewrites on each
# attempt (trace context), and those AWS's own signer leaves out.
_UNSIGNED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        "traceparent",
        "tracestate",
    }
)


def _encode(text: str) -> str:
    """RFC 3986 percent-encoding as AWS wants it: only ``A-Za-z0-9-_.~`` stay as they are."""
    return quote(text, safe="-_.~")


def _canonical_query(url: httpx.URL) -> str:
    """The query pairs strictly encoded, in the order given (what goes on the wire)."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in url.params.multi_items())


def _canonical_path(url: httpx.URL, service: str) -> str:
    path = url.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
    if service == "s3":  # S3 keys are signed as sent: no normalising, no second encoding
        return path
    kept: list[str] = []  # dot segments resolved, empty ones dropped, as AWS normalises
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    trailing = "/" if path.endswith("/") and kept else ""
    return quote("/" + "/".join(kept) + trailing, safe="/~")  # encoded a second time


def _payload_hash(request: httpx.Request) -> str:
    """The body's SHA-256 when it is in memory; ``UNSIGNED-PAYLOAD`` for a streamed body.

    A redirect hop carries its body as the stream of bytes it was (httpx builds it from
    the request before): in memory too, read at no cost.
    """
    if not hasattr(request, "_content") and isinstance(request.stream, httpx.ByteStream):
        request.read()
    if hasattr(request, "_content"):
        return hashlib.sha256(request.content).hexdigest()
    return UNSIGNED_PAYLOAD


def _header_value(request: httpx.Request, name: str) -> str:
    values = request.headers.get_list(name)
    return ",".join(" ".join(v.split()) for v in values)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class _Signed:
    """What one request was signed with, to sign it again on a retry."""

    method: str
    url: httpx.URL
    headers: tuple[str, ...]  # lowercase, sorted; "x-amz-date" among them
    payload: str


class _Resigner:
    """Signs a request again just before it is sent: a retry, with a fresh date; a
    redirect hop to the origin signed (or its https upgrade), anew, for its own URL,
    method and body (httpx follows redirects beneath auth).

    Once a hop has left that origin, nothing is signed again: the redirect dropped the
    credentials there, and a hop back that the other origin chose must not get them.
    """

    __slots__ = ("_auth", "_first", "_left", "_origin", "_signed")

    def __init__(self, auth: AWSSigV4, request: httpx.Request, signed: _Signed) -> None:
        self._auth = auth
        self._origin = signed.url
        self._left = False
        self._signed = signed
        # signed this moment: its first send needs nothing (weak: the request holds us)
        self._first: weakref.ref[httpx.Request] | None = weakref.ref(request)

    def __call__(self, request: httpx.Request) -> None:
        if self._left:
            return
        if self._first is not None and self._first() is request:
            self._first = None
            return
        signed = self._signed
        if request.method == signed.method and request.url == signed.url:
            self._auth._sign(request, signed)  # a retry: the same headers, a new date
        elif same_origin(request.url, self._origin) or https_upgrade(self._origin, request.url):
            self._signed = self._auth._prepare(request)
            self._auth._sign(request, self._signed)
        else:
            self._left = True


class AWSSigV4(httpx.Auth):
    """Sign requests with AWS Signature Version 4 (``AWS4-HMAC-SHA256``).

    Signs the method, path, query, the headers present when it runs (``host``
    and ``x-amz-*`` always) and the payload hash: the SHA-256 of a body in
    memory, ``UNSIGNED-PAYLOAD`` for a streamed one. With ``session_token``
    (temporary credentials) it sends ``X-Amz-Security-Token``. Under buttress's
    retry layer each attempt is signed again with the current time.

    Args:
        access_key: the access key id (not secret; it is part of the signature scope).
        secret_key: the secret access key; never sent, only used to sign.
        region: the region the request goes to (``"us-east-1"``).
        service: the signing name of the service (``"execute-api"``, ``"s3"``, ...).
        session_token: the token of temporary credentials, if any.
        clock: where the signing time comes from (a ``FakeClock`` in tests).

    Examples:
        >>> from buttress.testing import FakeClock
        >>> auth = AWSSigV4("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ...                 "us-east-1", "service", clock=FakeClock(epoch=1440938160.0))
        >>> request = httpx.Request("GET", "https://example.amazonaws.com/")
        >>> signed = next(auth.auth_flow(request))
        >>> signed.headers["X-Amz-Date"]
        '20150830T123600Z'
        >>> signed.headers["Authorization"].split(", ")[1]
        'SignedHeaders=host;x-amz-date'
        >>> auth
        AWSSigV4(access_key='AKIDEXAMPLE', region='us-east-1', service='service')
    """

    def __init__(
        self,
        access_key: str,
        secret_key: str | SecretStr,
        region: str,
        service: str,
        session_token: str | SecretStr | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for name, value in (("access_key", access_key), ("region", region), ("service", service)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"AWSSigV4 needs a non-empty {name}")
        self.access_key, self.region, self.service = access_key, region, service
        self.secret_key = _secret("secret_key", secret_key)
        self.session_token = (
            None if session_token is None else _secret("session_token", session_token)
        )
        self._clock = clock

    @classmethod
    def from_env(
        cls,
        *,
        service: str,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> AWSSigV4:
        """Credentials from the standard AWS environment variables.

        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``
        (optional), and the region from ``region`` or ``AWS_REGION`` /
        ``AWS_DEFAULT_REGION``.

        Examples:
            >>> env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret-key",
            ...        "AWS_REGION": "eu-west-1"}
            >>> AWSSigV4.from_env(service="execute-api", environ=env)
            AWSSigV4(access_key='AKID', region='eu-west-1', service='execute-api')
        """
        env = os.environ if environ is None else environ
        region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        missing = [
            name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(name)
        ]
        if not region:
            missing.append("AWS_REGION (or region=)")
        if missing:
            raise ConfigurationError(f"AWS credentials not found: set {', '.join(missing)}")
        assert region is not None
        return cls(
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            region,
            service,
            env.get("AWS_SESSION_TOKEN") or None,
            clock=clock,
        )

    def redactor(self) -> Redactor:
        """What this auth sends, for redaction: its headers, the secret key and the token.

        Examples:
            >>> AWSSigV4("AKID", "s3cret-key", "us-east-1", "s3").redactor().text("s3cret-key")
            '[REDACTED]'
        """
        values = [self.secret_key] + ([self.session_token] if self.session_token else [])
        return Redactor(headers=["Authorization", "X-Amz-Security-Token"], values=values)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        signed = self._prepare(request)
        self._sign(request, signed)
        request.extensions[RESIGN_KEY] = _Resigner(self, request, signed)
        yield request

    def _prepare(self, request: httpx.Request) -> _Signed:
        """Make ``request`` ready to sign (its query as AWS encodes it, the payload and token
        headers) and say what its signature covers."""
        canonical_query = _canonical_query(request.url)
        if request.url.query.decode("ascii") != canonical_query:
            request.url = request.url.copy_with(query=canonical_query.encode("ascii") or None)
        payload = _payload_hash(request)
        # S3 wants it; an unsigned payload says so; a hop keeps the header of the request
        # before it, which must now name this body
        if payload == UNSIGNED_PAYLOAD or self.service == "s3" or _CONTENT_HASH in request.headers:
            request.headers[_CONTENT_HASH] = payload
        if self.session_token is not None:
            request.headers["X-Amz-Security-Token"] = self.session_token.get_secret_value()
        mark_credential_headers(request, "authorization", "x-amz-security-token")
        names = {n.lower() for n in request.headers if n.lower() not in _UNSIGNED_HEADERS}
        return _Signed(
            request.method, request.url, tuple(sorted({*names, "host", "x-amz-date"})), payload
        )

    def _sign(self, request: httpx.Request, signed: _Signed) -> None:
        now = datetime.datetime.fromtimestamp(self._clock.time(), datetime.timezone.utc)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        request.headers["X-Amz-Date"] = stamp
        canonical = self.canonical_request(request, signed.headers, signed.payload)
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            (ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
        )
        key = _hmac(("AWS4" + self.secret_key.get_secret_value()).encode("utf-8"), day)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed.headers)}, Signature={signature}"
        )

    def canonical_request(
        self, request: httpx.Request, headers: tuple[str, ...], payload: str
    ) -> str:
        """The canonical request AWS hashes: method, path, query, ``headers``, their names, body.

        Examples:
            >>> auth = AWSSigV4("AKID", "s3cret-key", "us-east-1", "service")
            >>> request = httpx.Request("GET", "https://example.amazonaws.com/?b=2&a=1")
            >>> print(auth.canonical_request(request, ("host",), UNSIGNED_PAYLOAD))
            GET
            /
            a=1&b=2
            host:example.amazonaws.com
            <BLANKLINE>
            host
            UNSIGNED-PAYLOAD
        """
        pairs = sorted((_encode(k), _encode(v)) for k, v in request.url.params.multi_items())
        query = "&".join(f"{k}={v}" for k, v in pairs)  # by encoded name, then value
        lines = [f"{name}:{_header_value(request, name)}" for name in headers]
        return "\n".join(
            (
                request.method,
                _canonical_path(request.url, self.service),
                query,
                *lines,
                "",
                ";".join(headers),
                payload,
            )
        )

    def __repr__(self) -> str:
        return (
            f"AWSSigV4(access_key={self.access_key!r}, region={self.region!r}, "
            f"service={self.service!r})"
        )


def _secret(name: str, value: str | SecretStr) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    if not isinstance(secret.get_secret_value(), str) or not secret.get_secret_value():
        raise ConfigurationError(f"AWSSigV4 needs a non-empty {name}")
    return secret
