"""No secret value leaves a client through any output, whatever kind of credential it is.

Every credential kind buttress supports is sent to a server on 127.0.0.1 that
echoes everything it received (decoded Basic credentials too) back in its
bodies, a 401 included. Each runs with every layer on (logging at DEBUG with
bodies, middleware, metrics, retry, circuit breaker, rate limit, cache, spans)
and records a cassette; then every output channel is searched for every secret
value: log records (buttress's, httpx's and httpcore's, formatted and as
``vars(record)``), ``str``, ``repr`` and traceback of every exception raised,
reprs of the client, configs, auth, requests and responses, the cassette file,
metrics and span attributes.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

import buttress
from buttress.auth import AWSSigV4, ClientCredentials, OAuth2, RefreshToken
from buttress.testing import Cassette, DemoServer
from tests.conftest import Either
from tests.servers import PProxy, free_port

pytestmark = pytest.mark.anyio

# Long enough that an excerpt (a 30-character JSON snippet, a cut body) cuts them in two.
BEARER = "bearer-SECRET-0123456789abcdef-01"
API_KEY = "apikey-SECRET-0123456789abcdef-02"
SHOP_KEY = "shopkey-SECRET-0123456789abcdef-03"
PARAM_KEY = "paramkey-SECRET-0123456789abcdef-04"
BASIC_PW = "basicpw-SECRET-0123456789abcdef-05"
DIGEST_PW = "digestpw-SECRET-0123456789abcdef-06"
GRANTS = ("grant-SECRET-0123456789abcdef-07a", "grant-SECRET-0123456789abcdef-07b")
SIGNATURE = "hmac-SECRET-0123456789abcdef-08"
COOKIE = "cookie-SECRET-0123456789abcdef-09"
TENANT = "tenant-SECRET-0123456789abcdef-10"
URL_PW = "urlpw-SECRET-0123456789abcdef-11"
PROXY_PW = "proxypw-SECRET-0123456789abcdef-12"
SET_COOKIE = "setcookie-SECRET-0123456789abcdef-13"
MIDDLEWARE_KEY = "mwkey-SECRET-0123456789abcdef-14"
AWS_SECRET_KEY = "awssecret-SECRET-0123456789abcdef-15"
AWS_SESSION_TOKEN = "awstoken-SECRET-0123456789abcdef-16"
CLIENT_SECRET = "clientsecret-SECRET-0123456789abcdef-15"
REFRESH_TOKEN = "refresh-SECRET-0123456789abcdef-16"
ISSUED = ("access-SECRET-0123456789abcdef-17", "refresh-SECRET-0123456789abcdef-18")

_PLAIN_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent"}


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


class Vault:
    """ASGI: answers with everything it received, credentials first, as a careless API would.

    ``/ok`` 200 JSON (cacheable, sets a cookie), ``/private`` 401, ``/unavailable``
    503, ``/garbage`` 200 that is not JSON, ``/token`` an OAuth token endpoint
    that issues the same tokens whatever it is asked; under ``/digest`` a request without a
    Digest ``Authorization`` is challenged first, and the echo then names the
    password (a server that knows it, and says it).
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        path: str = scope["path"]
        if path.startswith("/digest"):
            path = path.removeprefix("/digest")
            if not any(k == "authorization" and v.startswith("Digest ") for k, v in headers):
                challenge = 'Digest realm="vault", nonce="n0nce", qop="auth", algorithm="MD5"'
                await self._send(send, 401, b"", [("www-authenticate", challenge)])
                return
        echo = self._echo(headers, scope["query_string"].decode("latin-1"), scope["path"])
        if path == "/token":
            access, refresh = ISSUED
            issued = {"access_token": access, "token_type": "Bearer", "refresh_token": refresh}
            body = json.dumps({**issued, "expires_in": 3600}).encode()
            await self._send(send, 200, body, [("content-type", "application/json")])
        elif path == "/ok":
            body = json.dumps({"received": echo}).encode()
            extra = [("set-cookie", f"grant={SET_COOKIE}; Path=/"), ("cache-control", "max-age=60")]
            await self._send(send, 200, body, [("content-type", "application/json"), *extra])
        elif path == "/garbage":
            await self._send(send, 200, f"<{echo}>".encode(), [("content-type", "text/html")])
        else:
            status = 401 if path == "/private" else 503
            body = json.dumps({"error": {"message": f"rejected {echo}"}}).encode()
            await self._send(send, status, body, [("content-type", "application/json")])

    @staticmethod
    def _echo(headers: list[tuple[str, str]], query: str, path: str) -> str:
        said = [v for k, v in headers if k not in _PLAIN_HEADERS]
        for _, value in headers:
            scheme, _, credential = value.partition(" ")
            if scheme == "Basic":
                said.append(base64.b64decode(credential).decode())
        said.append(unquote_plus(query))
        if path.startswith("/digest"):
            said.append(f"password {DIGEST_PW} expired")
        return " ".join(said)

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        encoded = [(k.encode(), v.encode()) for k, v in headers]
        encoded.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})


class SigningAuth(httpx.Auth):
    """A custom auth with a header name buttress cannot guess (the user marks it)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Hmac"] = SIGNATURE
        yield request


def _oauth(url: str, grant: Any, **options: Any) -> dict[str, Any]:
    token_url = f"{url}/token"
    auth = OAuth2(
        grant, client_id="svc", client_secret=CLIENT_SECRET, token_url=token_url, **options
    )
    return {"auth": auth}


def _grants() -> Callable[[], buttress.Token]:
    issued = iter(GRANTS * 4)  # refreshed at first use, then once per 401
    return lambda: buttress.Token(next(issued), expires_in=3600)


@dataclass
class Case:
    secrets: tuple[str, ...]
    client: Callable[[str, str], dict[str, Any]]  # (server url, proxy url) -> client kwargs
    redact_headers: tuple[str, ...] = ()
    prefix: str = ""  # path prefix on the Vault
    cassette: bool = True  # a cassette is the bottom transport: not with a proxy
    per_call: Callable[[str], dict[str, Any]] = lambda proxy: {}  # every call's kwargs


CASES = {
    "bearer tuple": Case((BEARER,), lambda url, _: {"auth": ("bearer", BEARER)}),
    "api-key tuple": Case((API_KEY,), lambda url, _: {"auth": ("api_key", API_KEY)}),
    "APIKeyAuth header": Case(
        (SHOP_KEY,), lambda url, _: {"auth": buttress.APIKeyAuth(SHOP_KEY, header="X-Shop-Key")}
    ),
    "APIKeyAuth param": Case(
        (PARAM_KEY,), lambda url, _: {"auth": buttress.APIKeyAuth(PARAM_KEY, param="q")}
    ),
    "basic": Case(
        (BASIC_PW, _basic("alice", BASIC_PW)), lambda url, _: {"auth": ("alice", BASIC_PW)}
    ),
    "digest": Case(
        (DIGEST_PW,),
        lambda url, _: {"auth": httpx.DigestAuth("alice", DIGEST_PW)},
        prefix="/digest",
    ),
    "refreshing auth": Case(
        GRANTS, lambda url, _: {"auth": buttress.RefreshingAuth(_grants(), header="X-Grant")}
    ),
    "OAuth2 client credentials": Case(
        (CLIENT_SECRET, _basic("svc", CLIENT_SECRET), *ISSUED),
        lambda url, _: _oauth(url, ClientCredentials()),
    ),
    "OAuth2 refresh token, secret in the body": Case(
        (CLIENT_SECRET, REFRESH_TOKEN, *ISSUED),
        lambda url, _: _oauth(url, RefreshToken(REFRESH_TOKEN), client_auth="body"),
    ),
    "custom auth, user-marked": Case(
        (SIGNATURE,), lambda url, _: {"auth": SigningAuth()}, redact_headers=("X-Hmac",)
    ),
    "AuthMiddleware": Case(
        (MIDDLEWARE_KEY,),
        lambda url, _: {
            "middleware": [
                buttress.AuthMiddleware(buttress.APIKeyAuth(MIDDLEWARE_KEY, header="X-Mw"))
            ]
        },
    ),
    "AWS SigV4": Case(
        (AWS_SECRET_KEY, AWS_SESSION_TOKEN),
        lambda url, _: {
            "auth": AWSSigV4(
                "AKIDTEST", AWS_SECRET_KEY, "us-east-1", "execute-api", AWS_SESSION_TOKEN
            )
        },
    ),
    "cookies": Case((COOKIE,), lambda url, _: {"cookies": {"sid": COOKIE}}),
    "user-marked header": Case(
        (TENANT,), lambda url, _: {"headers": {"X-Tenant": TENANT}}, redact_headers=("X-Tenant",)
    ),
    "URL userinfo": Case(
        (URL_PW, _basic("carol", URL_PW)),
        lambda url, _: {"base_url": url.replace("http://", f"http://carol:{URL_PW}@")},
    ),
    "proxy credentials": Case(
        (PROXY_PW, _basic("proxyuser", PROXY_PW)),
        lambda url, proxy: {"proxy": proxy},
        cassette=False,
    ),
    "per-call proxy credentials": Case(
        (PROXY_PW, _basic("proxyuser", PROXY_PW)),
        lambda url, proxy: {},
        cassette=False,
        per_call=lambda proxy: {"proxy": proxy},
    ),
}


@pytest.fixture(scope="module")
def vault() -> Iterator[DemoServer]:
    with DemoServer(Vault()) as server:
        yield server


@pytest.fixture(scope="module")
def proxy() -> Iterator[PProxy]:
    with PProxy("http", password=PROXY_PW) as running:
        yield running


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


class Item(BaseModel):
    id: int


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    texts = []
    for record in records:
        texts += [plain.format(record), buttress.JSONFormatter().format(record)]
        texts.append(repr(vars(record)))
    return texts


def _exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    exc: BaseException | None = error
    while exc is not None:
        texts += [str(exc), repr(exc), repr(exc.args)]
        request = getattr(exc, "_request", None)
        if request is not None:
            texts.append(repr(request))
        exc = exc.__cause__ or exc.__context__
    return texts


def _span_texts(exporter: InMemorySpanExporter) -> list[str]:
    texts = []
    for span in exporter.get_finished_spans():
        texts += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
        texts += [repr(dict(event.attributes or {})) for event in span.events]
    return texts


@pytest.mark.parametrize("kind", list(CASES))
async def test_no_secret_in_any_output(
    kind: str,
    make_client: Callable[..., Either],
    vault: DemoServer,
    request: pytest.FixtureRequest,
    exporter: InMemorySpanExporter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = CASES[kind]
    proxy_url = "" if case.cassette else request.getfixturevalue("proxy").url
    caplog.set_level(logging.DEBUG)  # every logger: buttress, httpx, httpcore
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    collector = buttress.PrometheusCollector()
    logging_config = buttress.LoggingConfig(log_bodies=True, redact_headers=case.redact_headers)
    cassette_path = tmp_path / "cassette.json"
    bottom: dict[str, Any] = {}
    if case.cassette:
        bottom["transport"] = Cassette(cassette_path, mode="record").transport()
    options: dict[str, Any] = {
        "base_url": vault.url + case.prefix,
        "logging": logging_config,
        "tracing": buttress.TracingConfig(tracer_provider=provider),
        "retry": buttress.RetryConfig(max_attempts=2),
        "circuit_breaker": buttress.CircuitBreakerConfig(failure_threshold=100),
        "rate_limit": buttress.RateLimitConfig(max_requests=1000, time_window=1),
        "cache": buttress.CacheConfig(),
        **bottom,
        **case.client(vault.url, proxy_url),
    }
    observers = [buttress.LoggingMiddleware("DEBUG"), buttress.MetricsMiddleware(collector)]
    options["middleware"] = [*observers, *options.get("middleware", ())]
    client = make_client(**options)
    texts = [repr(client.client), repr(logging_config), repr(client.client.auth)]

    for path in ("/ok", "/ok"):  # a miss, then a hit served by the cache
        response = await client.get(path, **case.per_call(proxy_url))
        assert response.status_code == 200
        texts += [repr(response), repr(response.request), response.request.url.path]
    if case.cassette:  # the echo held the secret: the cassette gave back what it wrote
        assert "[REDACTED]" in response.json()["received"]
    built = client.client.build_request("GET", "/ok", **case.per_call(proxy_url))
    texts += [repr(built), repr(built.extensions)]

    calls: list[tuple[str, type[Exception], dict[str, Any]]] = [
        ("/private", buttress.AuthenticationError, {}),
        ("/unavailable", buttress.ServerError, {}),
        ("/ok", buttress.ValidationError, {"response_model": Item}),
        (f"http://127.0.0.1:{free_port()}/refused", buttress.ClientError, {}),
    ]
    for path, error, kwargs in calls:
        with pytest.raises(error) as caught:
            await client.get(path, **kwargs, **case.per_call(proxy_url))
        texts += _exception_texts(caught.value)
    garbage = await client.get("/garbage", **case.per_call(proxy_url))
    with pytest.raises(buttress.InvalidJSONError) as invalid:
        garbage.json()
    texts += _exception_texts(invalid.value)

    await client.aclose()
    if case.cassette:
        texts.append(cassette_path.read_text("utf-8"))
    texts += [collector.render(), repr(collector)]
    texts += _span_texts(exporter)
    texts += _record_texts(caplog.records)

    seen = {r.name.partition(".")[0] for r in caplog.records}
    assert {"buttress", "httpx", "httpcore"} <= seen  # every source of records was on
    assert any(r.levelno == logging.DEBUG and hasattr(r, "headers") for r in caplog.records)
    assert exporter.get_finished_spans()
    for secret in (*case.secrets, SET_COOKIE):
        for text in texts:
            assert secret not in text, f"{kind}: {secret!r} leaked in: {text[:400]}"
