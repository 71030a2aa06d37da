"""One cache shared by callers with different credentials, against real servers on 127.0.0.1.

Every kind of credential a client can send (bearer and API key shorthands,
``APIKeyAuth`` by header and by query parameter, basic, a custom ``httpx.Auth``
signing with a header of its own, cookies, a header the user marks) on the
memory and the disk backend, sync and async: a stored response is served to the
same credential only, and nothing secret is written under a ``DiskCache``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

from buttress import APIKeyAuth, CacheConfig, DiskCache, LoggingConfig, MemoryCache
from buttress.cache import CacheBackend
from buttress.testing import DemoAPI, DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio


class Proof(httpx.Auth):
    """A custom scheme: signs every request with a header no vocabulary knows."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Client-Proof"] = self.secret
        yield request


# Client arguments that send the credential ``secret``, for each kind of credential.
KINDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "bearer tuple": lambda secret: {"auth": ("bearer", secret)},
    "api_key tuple": lambda secret: {"auth": ("api_key", secret)},
    "APIKeyAuth header": lambda secret: {"auth": APIKeyAuth(secret, header="X-Token")},
    "APIKeyAuth param": lambda secret: {"auth": APIKeyAuth(secret, param="api_key")},
    "APIKeyAuth unknown param": lambda secret: {"auth": APIKeyAuth(secret, param="k")},
    "basic": lambda secret: {"auth": ("alice", secret)},
    "custom httpx.Auth": lambda secret: {"auth": Proof(secret)},
    "cookie": lambda secret: {"cookies": {"sid": secret}},
    "user-marked header": lambda secret: {"headers": {"X-Tenant": secret}},
}
MARKED: dict[str, Any] = {"credential_headers": {"X-Tenant"}}  # the user marks a credential


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> CacheBackend:
    if request.param == "memory":
        return MemoryCache()
    return DiskCache(tmp_path / "cache")


def origin_hits(demo: DemoServer) -> int:
    return int(demo.app.hits["/cacheable"])


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_stored_response_is_served_to_the_same_credential_only(
    make_client: Callable[..., Either], demo: DemoServer, backend: CacheBackend, kind: str
) -> None:
    config = CacheConfig(backend=backend, **(MARKED if kind == "user-marked header" else {}))

    def caller(**credential: Any) -> Either:
        return make_client(base_url=demo.url, cache=config, **credential)

    alice, also_alice = caller(**KINDS[kind]("alice-1")), caller(**KINDS[kind]("alice-1"))
    bob, anonymous = caller(**KINDS[kind]("bob-2")), caller()
    params = {"key": uuid.uuid4().hex}  # /cacheable sends no Vary: only the key tells apart
    before = origin_hits(demo)

    assert not (await alice.get("/cacheable", params=params)).from_cache
    assert (await also_alice.get("/cacheable", params=params)).from_cache  # same credential
    assert not (await bob.get("/cacheable", params=params)).from_cache
    assert (await bob.get("/cacheable", params=params)).from_cache
    assert not (await anonymous.get("/cacheable", params=params)).from_cache
    assert origin_hits(demo) == before + 3


async def test_callers_without_credentials_still_share(
    make_client: Callable[..., Either], demo: DemoServer, backend: CacheBackend
) -> None:
    config = CacheConfig(backend=backend)
    first = make_client(base_url=demo.url, cache=config)
    second = make_client(base_url=demo.url, cache=config, headers={"User-Agent": "other/2.0"})
    params = {"key": uuid.uuid4().hex}
    await first.get("/cacheable", params=params)
    again = await second.get("/cacheable", params=params, headers={"X-Request-ID": "r-2"})
    assert again.from_cache
    assert again.json()["key"] == params["key"]


# A header that names no credential in any API (``NOT_CREDENTIALS``) is one once the
# client says so: in the cache's own configuration, or in its secrets vocabulary.
NAMED_A_CREDENTIAL: dict[str, Callable[[CacheBackend], dict[str, Any]]] = {
    "CacheConfig(credential_headers=...)": lambda backend: {
        "cache": CacheConfig(backend=backend, credential_headers=frozenset({"X-Correlation-ID"}))
    },
    "LoggingConfig(redact_headers=...)": lambda backend: {
        "cache": CacheConfig(backend=backend),
        "logging": LoggingConfig(redact_headers=("X-Correlation-ID",)),
    },
}


@pytest.mark.parametrize("named", list(NAMED_A_CREDENTIAL))
async def test_a_usually_public_header_named_a_credential_tells_callers_apart(
    make_client: Callable[..., Either], demo: DemoServer, backend: CacheBackend, named: str
) -> None:
    options = NAMED_A_CREDENTIAL[named](backend)

    def caller(secret: str) -> Either:
        return make_client(base_url=demo.url, headers={"X-Correlation-ID": secret}, **options)

    alice, also_alice, bob = caller("alice-1"), caller("alice-1"), caller("bob-2")
    params = {"key": uuid.uuid4().hex}
    before = origin_hits(demo)

    assert not (await alice.get("/cacheable", params=params)).from_cache
    assert (await also_alice.get("/cacheable", params=params)).from_cache
    assert not (await bob.get("/cacheable", params=params)).from_cache
    assert origin_hits(demo) == before + 2


# -- nothing secret on disk --------------------------------------------------------------------

SET_COOKIE = "setcookie-SECRET-0"
SESSION_TOKEN = "session-SECRET-1"
CLIENT_SECRET = "client-SECRET-2"
PASSWORD = "password-SECRET-3"
URL_PASSWORD = "urlpw-SECRET-4"
VARY = "Authorization, Cookie, X-Token, X-API-Key, X-Client-Proof, X-Tenant, X-Session-Token"


class PrivateAPI:
    """ASGI: ``/private`` is a private, cacheable answer that varies on the credential headers.

    It also sets a cookie (for another path, so the client does not send it
    back) and answers 304 to a matching ``If-None-Match``; everything else is
    the demo API.
    """

    def __init__(self) -> None:
        self.demo = DemoAPI()
        self.hits = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] != "/private":
            await self.demo(scope, receive, send)
            return
        self.hits += 1
        headers = [
            (b"cache-control", b"private, max-age=60"),
            (b"etag", b'"v1"'),
            (b"vary", VARY.encode()),
            (b"set-cookie", f"refresh={SET_COOKIE}; Path=/elsewhere".encode()),
        ]
        request_headers = dict(scope["headers"])
        if request_headers.get(b"if-none-match") == b'"v1"':
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"served": self.hits}).encode()
        headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def private() -> Generator[DemoServer, None, None]:
    with DemoServer(PrivateAPI()) as server:
        yield server


async def test_no_secret_is_written_under_the_cache_directory(
    make_client: Callable[..., Either], private: DemoServer, tmp_path: Path
) -> None:
    config = CacheConfig(backend=DiskCache(tmp_path), **MARKED)
    secret_of = {kind: kind.replace(" ", "-") + "-SECRET" for kind in KINDS}
    callers = [
        (make_client(cache=config, **KINDS[kind](secret)), f"{private.url}/private")
        for kind, secret in secret_of.items()
    ]
    callers += [
        (
            make_client(cache=config, headers={"X-Session-Token": SESSION_TOKEN}),
            f"{private.url}/private",
        ),
        (
            make_client(cache=config),
            f"http://alice:{URL_PASSWORD}@{private.url.removeprefix('http://')}/private",
        ),
    ]
    query = {"client_secret": CLIENT_SECRET, "password": PASSWORD, "page": "1"}
    for client, url in callers:
        first = await client.get(url, params=query)
        hit = await client.get(url, params=query)
        revalidated = await client.get(url, params=query, cache_control="no-cache")
        assert (first.from_cache, hit.from_cache) == (False, True)
        assert revalidated.extensions["buttress.cache"].revalidated
        assert "set-cookie" in first.headers
        assert "set-cookie" not in hit.headers
    assert config.backend.size == len(callers)

    secrets = [
        *secret_of.values(),
        base64.b64encode(f"alice:{secret_of['basic']}".encode()).decode(),
        SESSION_TOKEN,
        URL_PASSWORD,
        base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode(),
        CLIENT_SECRET,
        PASSWORD,
        SET_COOKIE,
    ]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) == len(callers) + 1  # the entries and the salt
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} is in {path.relative_to(tmp_path)}"
            assert secret not in str(path)
