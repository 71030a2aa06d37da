"""Authentication schemes and the auth= tuple rules."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

import buttress
from buttress.auth import APIKeyAuth, BearerAuth, coerce_auth
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (("bearer", "tok"), "authorization", "Bearer tok"),
        (("Bearer", SecretStr("tok")), "authorization", "Bearer tok"),
        (("api_key", "k1"), "x-api-key", "k1"),
        (("alice", "pw"), "authorization", "Basic YWxpY2U6cHc="),
        (APIKeyAuth("k2", header="X-Token"), "x-token", "k2"),
    ],
)
async def test_auth_forms(
    make_client: Callable[..., Either],
    demo: DemoServer,
    auth: buttress.auth.AuthTypes,
    header: str,
    value: str,
) -> None:
    client = make_client(base_url=demo.url, auth=auth)
    assert (await client.get("/echo")).json()["headers"][header] == value


async def test_api_key_in_query(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, auth=APIKeyAuth("k3", param="api_key"))
    assert (await client.get("/echo")).json()["query"]["api_key"] == "k3"


async def test_callable_auth(make_client: Callable[..., Either], demo: DemoServer) -> None:
    def sign(request: httpx.Request) -> httpx.Request:
        request.headers["X-Signature"] = "signed"
        return request

    client = make_client(base_url=demo.url, auth=sign)
    assert (await client.get("/echo")).json()["headers"]["x-signature"] == "signed"


@pytest.mark.parametrize("bad", [("a", "b", "c"), ("bearer", 3), 42])
def test_ambiguous_or_invalid_auth_is_refused(bad: object) -> None:
    with pytest.raises(buttress.ConfigurationError):
        coerce_auth(bad)


def test_reprs_hide_secrets() -> None:
    assert "s3cr3t" not in repr(BearerAuth("s3cr3t"))
    key = APIKeyAuth("k", param="key")
    assert "'k'" not in repr(key)
    assert key.location == "query"
    assert APIKeyAuth("k").location == "header"
