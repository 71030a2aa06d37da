"""Proxies from the environment read as httpx reads them: ``HTTP_PROXY`` and ``NO_PROXY``.

The promise: a client that takes its proxies from the environment routes every
request where bare httpx would. The routing table is compared with httpx's over
many ``NO_PROXY`` values, and the cases 127.0.0.1 can show go through a real proxy,
next to a bare httpx client of the same kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress._network import build_network
from buttress.testing import DemoServer
from tests.conftest import Either
from tests.servers import DigestProxy

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]

PROXIES = {"HTTP_PROXY": "http://h.proxy:1", "HTTPS_PROXY": "http://s.proxy:2"}
ALL_PROXY = {"ALL_PROXY": "http://a.proxy:3"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Sets the proxy variables (only those given: the others are removed, in either case)."""

    def set_environment(values: dict[str, str]) -> None:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_environment


NO_PROXY_VALUES = [
    "127.0.0.1",
    "127.0.0.1:8080",
    "http://127.0.0.1",
    "https://127.0.0.1:8443",
    "*",
    "a.test,*",
    "example.com",
    ".example.com",
    "*.example.com",
    "*example.com",
    "EXAMPLE.com",
    " example.com , other.test ",
    "example.com:80",
    "example.com:8080",
    "http://example.com:8080",
    "all://*.example.com",
    "ample.com",
    "::1",
    "localhost",
    "LOCALHOST",
    "localhost:8080",
    "127.0.0.0/8",
    "0.0.1",
    "http://",
    "all://",
    "http://*",
    "http://[::1]",
    "a,,b",
]
URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/",
    "https://127.0.0.1/",
    "https://127.0.0.1:8443/",
    "http://127.0.0.0/",
    "http://example.com/",
    "https://example.com:8080/",
    "http://example.com:80/",
    "http://www.example.com/",
    "https://sub.www.example.com/",
    "http://ample.com/",
    "http://sample.com/",
    "http://notexample.com/",
    "http://[::1]/",
    "http://localhost/",
    "http://localhost:8080/",
    "http://sub.localhost/",
    "http://10.0.0.1/",
    "http://a/",
    "http://b/",
]


def _httpx_route(client: httpx.Client, url: str) -> str | None:
    """The proxy bare httpx sends ``url`` through (its mount's pattern), or ``None``."""
    chosen = client._transport_for_url(httpx.URL(url))  # the oracle: httpx's own routing
    if chosen is client._transport:
        return None
    return next(pattern.pattern for pattern, mounted in client._mounts.items() if mounted is chosen)


@pytest.mark.parametrize("proxies", [PROXIES, ALL_PROXY, {**PROXIES, **ALL_PROXY}])
@pytest.mark.parametrize("no_proxy", NO_PROXY_VALUES)
def test_no_proxy_routes_as_httpx_does(
    no_proxy: str,
    proxies: dict[str, str],
    environment: Callable[[dict[str, str]], None],
) -> None:
    environment({**proxies, "NO_PROXY": no_proxy})
    by_pattern = {"http://": "http://h.proxy:1", "https://": "http://s.proxy:2"}
    by_pattern["all://"] = "http://a.proxy:3"
    # verify=False: no CA bundle to load for each of the many clients (nothing is sent)
    network = build_network(httpx.HTTPTransport, asynchronous=False, verify=False)
    with httpx.Client(verify=False) as client:
        for url in URLS:
            expected = _httpx_route(client, url)
            routed = network.proxy_for(httpx.Request("GET", url))
            assert (None if routed is None else str(routed)) == (
                None if expected is None else by_pattern[expected]
            ), url
    network.close()


@pytest.mark.parametrize("no_proxy", ["[::1]", "[::1]:8080", "::1/128", "bücher.example"])
def test_a_no_proxy_entry_httpx_refuses_is_refused(
    no_proxy: str, environment: Callable[[dict[str, str]], None]
) -> None:
    environment({**PROXIES, "NO_PROXY": no_proxy})
    with pytest.raises(httpx.InvalidURL):
        httpx.Client()
    with pytest.raises(buttress.ConfigurationError, match="NO_PROXY"):
        buttress.Client()


@pytest.mark.parametrize("proxy", ["127.0.0.1:3128", "proxy.test:3128", "user:pw@proxy.test:3128"])
def test_a_proxy_without_a_scheme_is_an_http_proxy(
    proxy: str, environment: Callable[[dict[str, str]], None]
) -> None:
    environment({"HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost"})
    network = build_network(httpx.HTTPTransport, asynchronous=False)
    assert str(network.proxy_for(httpx.Request("GET", "http://a.test/"))) == f"http://{proxy}"
    assert network.proxy_for(httpx.Request("GET", "http://127.0.0.1/")) is None
    network.close()


# -- through a real proxy, beside bare httpx ----------------------------------------------------


def _bare(either: Either) -> Either[httpx.Client | httpx.AsyncClient]:
    return Either(httpx.AsyncClient() if either.is_async else httpx.Client())


async def _through_proxy(either: Either[Any], url: str, proxy: DigestProxy) -> bool:
    before = proxy.connections
    await either.get(url)
    await either.aclose()
    return proxy.connections > before


@pytest.mark.parametrize(
    "no_proxy",
    [
        "",
        "127.0.0.1:{port}",
        "127.0.0.1:1",
        "http://127.0.0.1",
        "https://127.0.0.1",
        "*",
        "127.0.0.0/8",
        "0.0.1",
        " 127.0.0.1 ",
        "localhost,::1",
    ],
)
@pytest.mark.parametrize("scheme", ["http://", ""])
async def test_environment_proxies_route_as_bare_httpx(
    make_client: MakeClient,
    digest_proxy: DigestProxy,
    demo: DemoServer,
    environment: Callable[[dict[str, str]], None],
    no_proxy: str,
    scheme: str,
) -> None:
    port = httpx.URL(demo.url).port
    proxy = digest_proxy.url.removeprefix("http://")
    environment({"HTTP_PROXY": scheme + proxy, "NO_PROXY": no_proxy.format(port=port)})
    client = make_client(raise_for_status=False)
    url = f"{demo.url}/users/1"
    through_buttress = await _through_proxy(client, url, digest_proxy)
    through_httpx = await _through_proxy(_bare(client), url, digest_proxy)
    assert through_buttress == through_httpx
