"""Redirects: limits, cross-origin refusal, per-method policy, credential stripping."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

import buttress
from buttress import RedirectConfig
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


def chain(hops: int, final: str = "/users/1", status: int = 302) -> str:
    """A URL that redirects ``hops`` times before reaching ``final``."""
    url = final
    for _ in range(hops):
        url = "/redirect?" + urlencode({"to": url, "status": status})
    return url


async def test_redirects_are_followed_with_history(
    make_client: MakeClient, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    response = await client.get(chain(3))
    assert response.json()["name"] == "Ada Lovelace"
    assert [r.status_code for r in response.history] == [302, 302, 302]
    assert all(isinstance(r, buttress.Response) for r in response.history)


async def test_max_redirects_raises_a_buttress_error(
    make_client: MakeClient, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, max_redirects=2)
    assert (await client.get(chain(2))).status_code == 200
    with pytest.raises(buttress.TooManyRedirectsError) as caught:
        await client.get(chain(3))
    assert isinstance(caught.value, httpx.TooManyRedirects)


async def test_max_redirects_from_environment(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, settings=buttress.ButtressSettings(max_redirects=1))
    with pytest.raises(buttress.TooManyRedirectsError):
        await client.get(chain(2))


async def test_redirects_off_globally_and_on_per_call(
    make_client: MakeClient, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, follow_redirects=False)
    response = await client.get(chain(1))
    assert response.status_code == 302
    assert response.headers["location"] == "/users/1"
    assert (await client.get(chain(1), follow_redirects=True)).status_code == 200


async def test_redirects_off_per_call(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url)
    assert (await client.get(chain(1), follow_redirects=False)).status_code == 302


async def test_cross_origin_redirects_can_be_refused(
    make_client: MakeClient, demo: DemoServer, other_origin: DemoServer
) -> None:
    client = make_client(base_url=demo.url, redirects=RedirectConfig(allow_cross_origin=False))
    assert (await client.get(chain(1))).status_code == 200  # same origin: fine
    with pytest.raises(buttress.RedirectRefusedError, match="cross-origin") as caught:
        await client.get(chain(1, final=f"{other_origin.url}/users/1"))
    assert isinstance(caught.value, httpx.RequestError)
    assert other_origin.app.hits["/users/1"] == 0


async def test_cross_origin_refusal_from_environment(
    make_client: MakeClient, demo: DemoServer, other_origin: DemoServer
) -> None:
    settings = buttress.ButtressSettings(allow_cross_origin_redirects=False)
    client = make_client(base_url=demo.url, settings=settings)
    with pytest.raises(buttress.RedirectRefusedError):
        await client.get(chain(1, final=f"{other_origin.url}/echo"))


async def test_cross_origin_redirects_followed_by_default(
    make_client: MakeClient, demo: DemoServer, other_origin: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    response = await client.get(chain(1, final=f"{other_origin.url}/users/2"))
    assert response.json()["name"] == "Grace Hopper"


@pytest.mark.parametrize(
    ("client_kwargs", "header"),
    [
        ({"auth": ("bearer", "b-secret")}, "authorization"),
        ({"auth": ("api_key", "k-secret")}, "x-api-key"),
        ({"auth": ("alice", "pw-secret")}, "authorization"),
        ({"auth": buttress.APIKeyAuth("k-secret", header="X-Custom-Key")}, "x-custom-key"),
        ({"headers": {"X-API-Key": "k-secret"}}, "x-api-key"),
        (
            {
                "headers": {"X-Service-Token": "k-secret"},
                "settings": buttress.ButtressSettings(api_key_header="X-Service-Token"),
            },
            "x-service-token",
        ),
        # what the vocabulary of secrets calls a credential, as logs hide it
        ({"headers": {"X-Upstream-Token": "k-secret"}}, "x-upstream-token"),
        (
            {
                "headers": {"X-Tenant": "k-secret"},
                "logging": buttress.LoggingConfig(redact_headers=("X-Tenant",)),
            },
            "x-tenant",
        ),
        (
            {
                "headers": {"X-Tenant": "k-secret"},
                "redirects": buttress.RedirectConfig(strip_headers=frozenset({"X-Tenant"})),
            },
            "x-tenant",
        ),
    ],
)
async def test_credentials_are_dropped_when_a_redirect_leaves_the_origin(
    make_client: MakeClient,
    demo: DemoServer,
    other_origin: DemoServer,
    client_kwargs: dict[str, object],
    header: str,
) -> None:
    client = make_client(base_url=demo.url, **client_kwargs)
    same = (await client.get(chain(1, final="/echo"))).json()["headers"]
    assert header in same  # kept on the same origin
    away = (await client.get(chain(1, final=f"{other_origin.url}/echo"))).json()["headers"]
    assert header not in away


async def test_per_call_credentials_are_dropped_too(
    make_client: MakeClient, demo: DemoServer, other_origin: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    auth = buttress.APIKeyAuth("k-secret", header="X-Call-Key")
    away = await client.get(chain(1, final=f"{other_origin.url}/echo"), auth=auth)
    assert "x-call-key" not in away.json()["headers"]


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_post_becomes_get_without_body_by_default(
    make_client: MakeClient, demo: DemoServer, status: int
) -> None:
    client = make_client(base_url=demo.url)
    echoed = (await client.post(chain(1, "/echo", status), json={"a": 1})).json()
    assert (echoed["method"], echoed["body"]) == ("GET", "")


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_keep_method_and_body(
    make_client: MakeClient, demo: DemoServer, status: int
) -> None:
    client = make_client(base_url=demo.url)
    echoed = (await client.post(chain(1, "/echo", status), json={"a": 1})).json()
    assert (echoed["method"], echoed["json"]) == ("POST", {"a": 1})


@pytest.mark.parametrize(("status", "method"), [(301, "POST"), (302, "POST"), (303, "GET")])
async def test_keep_policy_resends_post_with_its_body(
    make_client: MakeClient, demo: DemoServer, status: int, method: str
) -> None:
    client = make_client(base_url=demo.url, redirects=RedirectConfig(methods={"POST": "keep"}))
    echoed = (await client.post(chain(1, "/echo", status), json={"a": 1})).json()
    assert echoed["method"] == method  # a 303 still means "GET the result"
    assert echoed["json"] == ({"a": 1} if method == "POST" else None)


async def test_stop_policy_does_not_follow(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, redirects=RedirectConfig(methods={"post": "stop"}))
    response = await client.post(chain(1, "/echo", 307), json={"a": 1})
    assert response.status_code == 307
    assert (await client.get(chain(1, "/echo"))).status_code == 200  # GET still follows


async def test_get_policy_turns_a_put_into_get(make_client: MakeClient, demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, redirects=RedirectConfig(methods={"PUT": "get"}))
    default = make_client(base_url=demo.url)
    assert (await default.put(chain(1, "/echo", 301), json={})).json()["method"] == "PUT"
    assert (await client.put(chain(1, "/echo", 301), json={})).json()["method"] == "GET"
