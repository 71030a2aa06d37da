"""Authentication schemes, the tuple rule, environment credentials and credential refresh."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import buttress
from buttress import RefreshingAuth, Token
from buttress.auth import coerce_auth
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import TokenGate

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


async def echoed_headers(client: Either, **kwargs: Any) -> dict[str, str]:
    return dict((await client.get("/echo", **kwargs)).json()["headers"])


# --- schemes ------------------------------------------------------------------------------


async def test_api_key_in_default_header(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, auth=("api_key", "k1"))
    assert (await echoed_headers(client))["x-api-key"] == "k1"


async def test_api_key_header_name_is_configurable(
    make_client: MakeClient, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, auth=buttress.APIKeyAuth("k2", header="X-Token"))
    assert (await echoed_headers(client))["x-token"] == "k2"


async def test_api_key_in_query_parameter(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, auth=buttress.APIKeyAuth("k3", param="api_key"))
    echoed = (await client.get("/echo", params={"page": 2})).json()
    assert echoed["query"] == {"page": "2", "api_key": "k3"}


async def test_bearer_token(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, auth=("Bearer", "tok"))
    assert (await echoed_headers(client))["authorization"] == "Bearer tok"


@pytest.mark.parametrize("auth", [("alice", "pw"), ("basic", "alice", "pw")])
async def test_basic_auth(make_client: MakeClient, demo: DemoServer, auth: Any) -> None:
    client = make_client(base_url=demo.url, auth=auth)
    expected = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert (await echoed_headers(client))["authorization"] == expected


async def test_callable_auth(make_client: MakeClient, demo: DemoServer) -> None:
    def sign(request: httpx.Request) -> httpx.Request:
        request.headers["X-Signature"] = f"signed:{request.method}"
        return request

    client = make_client(base_url=demo.url, auth=sign)
    assert (await echoed_headers(client))["x-signature"] == "signed:GET"


async def test_httpx_auth_subclass(make_client: MakeClient, demo: DemoServer) -> None:
    class HMACAuth(httpx.Auth):
        def auth_flow(
            self, request: httpx.Request
        ) -> Generator[httpx.Request, httpx.Response, None]:
            request.headers["X-HMAC"] = "abc"
            yield request

    client = make_client(base_url=demo.url, auth=HMACAuth())
    assert (await echoed_headers(client))["x-hmac"] == "abc"


@pytest.mark.parametrize(
    "auth",
    [
        ("basic", "x"),
        ("Digest", "x"),
        ("token", "x"),
        ("bearer", ""),
        ("bearer", "a", "b"),
        ("a", "b", "c", "d"),
        (1, 2),
        ("", "pw"),
        42,
    ],
)
def test_ambiguous_or_invalid_auth_is_refused(auth: Any) -> None:
    with pytest.raises(buttress.ConfigurationError):
        coerce_auth(auth)


def test_secret_tuple_parts_are_accepted() -> None:
    auth = coerce_auth(("bearer", SecretStr("s3cret-value")))
    assert isinstance(auth, buttress.BearerAuth)
    assert "s3cret-value" not in repr(auth)


# --- environment and per-call override -----------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "header", "value"),
    [
        ({"bearer_token": "env-tok"}, "authorization", "Bearer env-tok"),
        ({"api_key": "env-key"}, "x-api-key", "env-key"),
        ({"api_key": "env-key", "api_key_header": "X-Key"}, "x-key", "env-key"),
        (
            {"username": "bob", "password": "pw"},
            "authorization",
            "Basic " + base64.b64encode(b"bob:pw").decode(),
        ),
    ],
)
async def test_credentials_from_the_environment(
    make_client: MakeClient, demo: DemoServer, settings: dict[str, str], header: str, value: str
) -> None:
    env = buttress.ButtressSettings(**settings)  # type: ignore[arg-type]
    client = make_client(base_url=demo.url, settings=env)
    assert (await echoed_headers(client))[header] == value


async def test_api_key_query_parameter_from_the_environment(
    make_client: MakeClient, demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTTRESS_API_KEY", "env-key")
    monkeypatch.setenv("BUTTRESS_API_KEY_PARAM", "key")
    client = make_client(base_url=demo.url)
    assert (await client.get("/echo")).json()["query"] == {"key": "env-key"}


async def test_per_call_auth_overrides_the_environment(
    make_client: MakeClient, demo: DemoServer
) -> None:
    env = buttress.ButtressSettings(bearer_token="env-tok")  # type: ignore[arg-type]
    client = make_client(base_url=demo.url, settings=env)
    headers = await echoed_headers(client, auth=("bearer", "call-tok"))
    assert headers["authorization"] == "Bearer call-tok"


def test_secrets_are_never_printed(caplog: pytest.LogCaptureFixture) -> None:
    env = buttress.ButtressSettings(
        bearer_token="tok-secret",  # type: ignore[arg-type]
        api_key="key-secret",  # type: ignore[arg-type]
        password="pw-secret",  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.DEBUG), buttress.Client(settings=env) as client:
        shown = repr(env) + str(env) + repr(client) + repr(client.auth)
    shown += repr(buttress.APIKeyAuth("key-secret")) + repr(Token("tok-secret", 5))
    shown += repr(RefreshingAuth(lambda: "tok-secret", token="tok-secret"))
    for secret in ("tok-secret", "key-secret", "pw-secret"):
        assert secret not in shown
        assert secret not in caplog.text


# --- credential refresh --------------------------------------------------------------------


@pytest.fixture
def gate() -> Iterator[tuple[TokenGate, DemoServer]]:
    app = TokenGate(valid="fresh")
    with DemoServer(app) as server:
        yield app, server


class Renewer:
    """A refresh callback that counts its calls and hands out the gate's token."""

    def __init__(self, gate: TokenGate, expires_in: float | None = None) -> None:
        self.gate, self.expires_in = gate, expires_in
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Token:
        with self._lock:
            self.calls += 1
        return Token(self.gate.valid, expires_in=self.expires_in)


async def test_refresh_once_on_401_then_resend(
    make_client: MakeClient, gate: tuple[TokenGate, DemoServer]
) -> None:
    app, server = gate
    renew = Renewer(app)
    client = make_client(base_url=server.url, auth=RefreshingAuth(renew, token="stale"))
    response = await client.get("/users/1")
    assert response.json()["name"] == "Ada Lovelace"
    assert (renew.calls, app.rejected) == (1, 1)
    assert [r.status_code for r in response.history] == [401]  # httpx records auth steps
    await client.get("/users/2")
    assert renew.calls == 1  # the new token is kept


async def test_refresh_before_a_known_expiry(
    make_client: MakeClient, gate: tuple[TokenGate, DemoServer]
) -> None:
    app, server = gate
    clock = FakeClock()
    renew = Renewer(app, expires_in=60)
    auth = RefreshingAuth(renew, leeway=10, clock=clock)
    client = make_client(base_url=server.url, auth=auth)
    await client.get("/users/1")  # no token yet: fetched first
    clock.advance(45)
    await client.get("/users/1")  # still valid for 15 s > leeway
    assert renew.calls == 1
    app.valid = "rotated"
    clock.advance(10)  # 5 s left < leeway: refresh before sending
    assert (await client.get("/users/1")).status_code == 200
    assert renew.calls == 2
    assert app.rejected == 0  # never met a 401


async def test_a_second_401_is_returned_not_looped(
    make_client: MakeClient, gate: tuple[TokenGate, DemoServer]
) -> None:
    app, server = gate
    calls: list[int] = []

    def useless() -> str:
        calls.append(1)
        return "still-wrong"

    client = make_client(base_url=server.url, auth=RefreshingAuth(useless, token="stale"))
    with pytest.raises(buttress.AuthenticationError):
        await client.get("/users/1")
    assert len(calls) == 1
    assert app.rejected == 2


async def test_async_refresh_callback(
    make_client: MakeClient, gate: tuple[TokenGate, DemoServer]
) -> None:
    _, server = gate
    calls: list[int] = []

    async def renew() -> Token:
        calls.append(1)
        await asyncio.sleep(0)
        return Token("fresh")

    client = make_client(base_url=server.url, auth=RefreshingAuth(renew, token="stale"))
    assert (await client.get("/users/1")).status_code == 200
    assert len(calls) == 1


def test_refresh_callback_must_return_a_credential(gate: tuple[TokenGate, DemoServer]) -> None:
    _, server = gate
    auth = RefreshingAuth(lambda: 42, token="stale")  # type: ignore[arg-type,return-value]
    with (
        buttress.Client(base_url=server.url, auth=auth) as client,
        pytest.raises(buttress.ConfigurationError, match="returned int"),
    ):
        client.get("/users/1")


CONCURRENT = 50


def test_fifty_threads_meeting_a_401_refresh_once() -> None:
    app = TokenGate(valid="fresh", hold=CONCURRENT)
    renew = Renewer(app)
    auth = RefreshingAuth(renew, token="stale")
    with (
        DemoServer(app) as server,
        buttress.Client(base_url=server.url, auth=auth) as client,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        statuses = list(pool.map(lambda i: client.get(f"/users/{i}").status_code, range(1, 51)))
    assert statuses == [200] * CONCURRENT
    assert app.rejected == CONCURRENT  # all of them met the 401 together
    assert renew.calls == 1
    assert auth.refreshes == 1


@pytest.mark.parametrize("kind", ["sync callback", "async callback"])
async def test_fifty_tasks_meeting_a_401_refresh_once(kind: str) -> None:
    app = TokenGate(valid="fresh", hold=CONCURRENT)
    renew = Renewer(app)

    async def arenew() -> Token:
        await asyncio.sleep(0)
        return renew()

    auth = RefreshingAuth(renew if kind == "sync callback" else arenew, token="stale")
    with DemoServer(app) as server:
        async with buttress.AsyncClient(base_url=server.url, auth=auth) as client:
            responses = await asyncio.gather(
                *(client.get(f"/users/{i}") for i in range(1, CONCURRENT + 1))
            )
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    assert app.rejected == CONCURRENT
    assert renew.calls == 1
