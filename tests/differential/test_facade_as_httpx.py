"""``buttress.Client`` where httpx's own tests pin httpx's behaviour: the same outcome.

Each test runs one body through ``httpx.Client``/``AsyncClient`` and through
``buttress.Client``/``AsyncClient`` (with ``raise_for_status=False`` where a
status is the point), and asks the same of both: what the exception is
caught as, which headers a redirect keeps, which warning is raised. Found by
running httpx's test suite with buttress's clients in its place.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

import buttress
from buttress.testing import DemoServer

pytestmark = pytest.mark.anyio

KINDS = ["httpx-sync", "httpx-async", "buttress-sync", "buttress-async"]


class Either:
    """One client of ``kind`` behind an awaitable ``request``."""

    def __init__(self, kind: str, **options: Any) -> None:
        library, mode = kind.split("-")
        self.is_async = mode == "async"
        if library == "buttress":
            options.setdefault("raise_for_status", False)
            options.setdefault("retry", False)
            module: Any = buttress
        else:
            module = httpx
        cls = module.AsyncClient if self.is_async else module.Client
        self.client: Any = cls(**options)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.is_async:
            return await self.client.request(method, url, **kwargs)  # type: ignore[no-any-return]
        return self.client.request(method, url, **kwargs)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if self.is_async:
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _redirecting(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/upgrade":
        return httpx.Response(301, headers={"Location": "https://api.test/seen"})
    return httpx.Response(200, json={"authorization": request.headers.get("Authorization")})


async def test_an_upgrade_to_https_on_the_same_host_keeps_authorization(kind: str) -> None:
    # httpx: no other origin for credentials (its _is_https_redirect), nor for us.
    client = Either(kind, transport=httpx.MockTransport(_redirecting), follow_redirects=True)
    for auth in ({"headers": {"Authorization": "Bearer t0ken"}}, {"auth": ("ada", "pw")}):
        response = await client.request("GET", "http://api.test/upgrade", **auth)
        assert response.url == "https://api.test/seen"
        assert response.json()["authorization"] is not None
    await client.aclose()


async def test_a_redirect_to_another_scheme_is_httpxs_unsupported_protocol(
    kind: str, demo: DemoServer
) -> None:
    client = Either(kind, follow_redirects=True)  # the network's transport refuses the scheme
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.request("GET", f"{demo.url}/redirect", params={"to": "market://item?id=1"})
    await client.aclose()


async def test_sending_on_a_closed_client_is_a_runtime_error(kind: str) -> None:
    client = Either(kind, transport=httpx.MockTransport(_redirecting))
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("GET", "https://api.test/")


async def test_an_auth_of_the_wrong_kind_is_a_type_error(kind: str) -> None:
    client = Either(kind, transport=httpx.MockTransport(_redirecting))
    with pytest.raises(TypeError):
        await client.request("GET", "https://api.test/", auth=object())
    await client.aclose()
    library: Any = httpx if kind.startswith("httpx") else buttress
    with pytest.raises(TypeError):
        library.Client(auth=object())


async def test_per_request_cookies_warn_as_httpx_does(kind: str) -> None:
    client = Either(kind, transport=httpx.MockTransport(_redirecting))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await client.request("GET", "https://api.test/", cookies={"a": "1"})
    await client.aclose()
    warned = [w for w in caught if w.category is DeprecationWarning]
    assert any("per-request cookies" in str(w.message) for w in warned)
    if kind.startswith("buttress"):  # it names the caller's line (httpx names its own)
        assert {w.filename for w in warned} == {__file__}


async def test_stream_with_cookies_does_not_warn_as_httpx_does_not(kind: str) -> None:
    client = Either(kind, transport=httpx.MockTransport(_redirecting))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if client.is_async:
            async with client.client.stream("GET", "https://api.test/", cookies={"a": "1"}):
                pass
        else:
            with client.client.stream("GET", "https://api.test/", cookies={"a": "1"}):
                pass
    await client.aclose()
    assert not [w for w in caught if w.category is DeprecationWarning]
