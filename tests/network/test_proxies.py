"""Proxies through real proxies on 127.0.0.1: pproxy (HTTP, SOCKS5) and a Digest proxy."""

from __future__ import annotations

import gc
import logging
import sys
import warnings
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

import buttress
from buttress._network import NetworkTransport, bypasses, environment_proxies
from buttress.testing import DemoServer
from tests.conftest import Either
from tests.servers import Certificates, DigestProxy, PProxy, TLSServer

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


def network(either: Either) -> NetworkTransport:
    transport = either.client._transport
    while not isinstance(transport, NetworkTransport):  # under the buttress layers
        transport = transport._inner
    return transport


async def test_http_proxy_with_basic_auth(
    make_client: MakeClient, http_proxy: PProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=http_proxy.url)
    assert (await client.get("/users/1")).json()["name"] == "Ada Lovelace"


async def test_http_proxy_tunnels_https(
    make_client: MakeClient, http_proxy: PProxy, h2_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=h2_server.url, proxy=http_proxy.url, verify_ssl=str(certs.ca))
    assert (await client.get("/users/2")).json()["name"] == "Grace Hopper"


async def test_https_proxy_speaks_tls_to_the_proxy(
    make_client: MakeClient, tls_proxy: PProxy, demo: DemoServer, certs: Certificates
) -> None:
    client = make_client(base_url=demo.url, proxy=tls_proxy.url, verify_ssl=str(certs.ca))
    assert (await client.get("/users/1")).json()["name"] == "Ada Lovelace"


async def test_https_proxy_certificate_is_verified(
    make_client: MakeClient, tls_proxy: PProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=tls_proxy.url, trust_env=False)
    with pytest.raises(buttress.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.get("/users/1")


async def test_http_proxy_refuses_missing_credentials_without_leaking(
    make_client: MakeClient, http_proxy: PProxy, demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = http_proxy.url.replace(http_proxy.password, "wrong-pw")
    client = make_client(base_url=demo.url, proxy=wrong)
    with caplog.at_level(logging.DEBUG):
        try:
            response = await client.get("/users/1", raise_for_status=False)
        except buttress.ConnectionError as exc:  # pproxy may hang up instead of answering 407
            text = f"{exc!s} {exc!r}"
        else:
            assert response.status_code == 407
            text = response.text
    assert "wrong-pw" not in text
    assert "wrong-pw" not in caplog.text
    assert "wrong-pw" not in repr(client.client) + repr(network(client))


async def test_socks5_proxy_with_credentials(
    make_client: MakeClient, socks_proxy: PProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=socks_proxy.url)
    assert (await client.get("/users/3")).json()["id"] == 3


async def test_socks5_proxy_to_https_and_http2(
    make_client: MakeClient, socks_proxy: PProxy, h2_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(
        base_url=h2_server.url, proxy=socks_proxy.url, verify_ssl=str(certs.ca), http2=True
    )
    response = await client.get("/users/1")
    assert response.http_version == "HTTP/2"


async def test_socks5_wrong_credentials_fail_without_leaking(
    make_client: MakeClient, socks_proxy: PProxy, demo: DemoServer
) -> None:
    wrong = socks_proxy.url.replace(socks_proxy.password, "wrong-socks-pw")
    client = make_client(base_url=demo.url, proxy=wrong)
    # httpcore does not close the socket of a refused SOCKS5 handshake; it is closed when the
    # error's traceback is collected (below), with a ResourceWarning about httpcore's stream.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.get("/users/1")
        shown = f"{caught.value!s} {caught.value!r}"
        del caught
        gc.collect()
    assert "wrong-socks-pw" not in shown
    assert "Invalid username/password" in shown


async def test_socks4_proxy_through_httpx_socks(
    make_client: MakeClient, socks4_proxy: PProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=socks4_proxy.url)
    assert (await client.get("/users/3")).json()["id"] == 3


SOCKS_PACKAGES = pytest.mark.parametrize(
    ("proxy", "package", "extra"),
    [
        ("socks5://127.0.0.1:1", "socksio", "socks"),
        ("socks5h://127.0.0.1:1", "socksio", "socks"),
        ("socks4://127.0.0.1:1", "httpx_socks", "socks4"),
        ("socks4a://127.0.0.1:1", "httpx_socks", "socks4"),
    ],
)


@SOCKS_PACKAGES
async def test_socks_without_its_package_names_the_extra(
    make_client: MakeClient,
    proxy: str,
    package: str,
    extra: str,
    monkeypatch: pytest.MonkeyPatch,
    demo: DemoServer,
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # an install without the extra
    names_the_extra = rf"pip install 'buttress\[{extra}\]'"
    with pytest.raises(buttress.ConfigurationError, match=names_the_extra):
        make_client(base_url=demo.url, proxy=proxy)  # the client's proxy: as it is built
    client = make_client(base_url=demo.url)
    with pytest.raises(buttress.ConfigurationError, match=names_the_extra):
        await client.get("/users/1", proxy=proxy)


def test_unsupported_proxy_scheme_is_a_configuration_error() -> None:
    with pytest.raises(buttress.ConfigurationError, match="unsupported proxy"):
        buttress.Client(proxy="ftp://user:hidden-pw@proxy.test")


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_proxy_credentials_never_in_logs(
    make_client: MakeClient,
    http_proxy: PProxy,
    socks_proxy: PProxy,
    demo: DemoServer,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    proxy = http_proxy if kind == "http" else socks_proxy
    with caplog.at_level(logging.DEBUG):
        client = make_client(base_url=demo.url, proxy=proxy.url)
        await client.get("/users/1")
        await client.get("/users/2", proxy=proxy.url)
    assert caplog.records  # httpx and httpcore did log the exchange
    assert proxy.password not in caplog.text


def test_proxy_credentials_never_in_reprs(http_proxy: PProxy) -> None:
    with buttress.Client(proxy=http_proxy.url) as client:
        assert http_proxy.password not in repr(client._transport)
        assert "[REDACTED]" in repr(client._transport)
    settings = buttress.ButtressSettings(proxy=SecretStr(http_proxy.url))
    assert http_proxy.password not in repr(settings)


async def test_digest_proxy_authentication(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=digest_proxy.url)
    assert (await client.get("/users/1")).json()["name"] == "Ada Lovelace"
    assert (await client.get("/users/2")).json()["name"] == "Grace Hopper"
    assert digest_proxy.challenges == 1  # the challenge is answered once, then reused
    assert digest_proxy.requests == 2


async def test_digest_proxy_with_wrong_password_returns_407(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    wrong = digest_proxy.url.replace(digest_proxy.password, "bad-digest-pw")
    client = make_client(base_url=demo.url, proxy=wrong, raise_for_status=False)
    response = await client.get("/users/1")
    assert response.status_code == 407
    assert digest_proxy.requests == 0


async def test_per_request_proxy_reuses_pooled_connections(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=False)
    for user_id in (1, 2, 3):
        response = await client.get(f"/users/{user_id}", proxy=digest_proxy.url)
        assert response.json()["id"] == user_id
    await client.get("/users/4")  # the client's own route: direct
    extensions = buttress.options(proxy=digest_proxy.url)
    await client.get("/users/5", extensions=extensions)
    assert digest_proxy.requests == 4
    assert digest_proxy.connections == 1  # one pooled connection served every proxied call


async def test_per_request_proxy_false_goes_direct(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=digest_proxy.url)
    await client.get("/users/1", proxy=False)
    assert digest_proxy.connections == 0


async def test_environment_proxies_are_honoured(
    make_client: MakeClient,
    digest_proxy: DigestProxy,
    demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", digest_proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client(base_url=demo.url)
    await client.get("/users/1")
    assert digest_proxy.requests == 1


async def test_all_proxy_is_honoured(
    make_client: MakeClient,
    digest_proxy: DigestProxy,
    demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", digest_proxy.url)
    client = make_client(base_url=demo.url)
    await client.get("/users/1")
    assert digest_proxy.requests == 1


@pytest.mark.parametrize("switch", [{"trust_env": False}, {"proxy": False}])
async def test_environment_proxies_can_be_switched_off(
    make_client: MakeClient,
    digest_proxy: DigestProxy,
    demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
    switch: dict[str, bool],
) -> None:
    monkeypatch.setenv("HTTP_PROXY", digest_proxy.url)
    client = make_client(base_url=demo.url, **switch)
    await client.get("/users/1")
    assert digest_proxy.connections == 0


async def test_no_proxy_is_honoured(
    make_client: MakeClient,
    digest_proxy: DigestProxy,
    demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", digest_proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    client = make_client(base_url=demo.url)
    await client.get("/users/1")
    assert digest_proxy.connections == 0


async def test_bypass_hosts_skip_an_explicit_proxy(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, proxy=digest_proxy.url, proxy_bypass=["127.0.0.1"])
    await client.get("/users/1")
    assert digest_proxy.connections == 0


async def test_proxy_and_bypass_from_buttress_settings(
    make_client: MakeClient, digest_proxy: DigestProxy, demo: DemoServer
) -> None:
    proxy = SecretStr(digest_proxy.url)
    settings = buttress.ButtressSettings(proxy=proxy, proxy_bypass="other.test")
    client = make_client(base_url=demo.url, settings=settings)
    await client.get("/users/1")
    assert digest_proxy.requests == 1
    bypassing = buttress.ButtressSettings(proxy=proxy, proxy_bypass="127.0.0.1")
    await make_client(base_url=demo.url, settings=bypassing).get("/users/1")
    assert digest_proxy.requests == 1


def test_environment_proxies_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("https_proxy", "http://p.test:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://s.test:1080")
    monkeypatch.setenv("NO_PROXY", " internal.test , 10.0.0.1 ")
    proxies, no_proxy = environment_proxies()
    assert proxies == {"https": "http://p.test:3128", "all": "socks5://s.test:1080"}
    assert no_proxy == ("internal.test", "10.0.0.1")


@pytest.mark.parametrize(
    ("host", "patterns", "expected"),
    [
        ("api.internal.test", [".internal.test"], True),
        ("api.internal.test", ["*.internal.test"], True),
        ("internal.test", ["internal.test"], True),
        ("notinternal.test", ["internal.test"], False),
        ("anything.test", ["*"], True),
        ("10.0.0.1", ["10.0.0.1"], True),
    ],
)
def test_bypass_patterns(host: str, patterns: list[str], expected: bool) -> None:
    assert bypasses(host, patterns) is expected


def test_routing_by_scheme() -> None:
    transport = NetworkTransport(
        lambda proxy: httpx.HTTPTransport(proxy=proxy),
        proxies={"http": "http://a.test:1", "https": "http://b.test:1"},
    )
    assert str(transport.proxy_for(httpx.Request("GET", "http://x.test"))) == "http://a.test:1"
    assert str(transport.proxy_for(httpx.Request("GET", "https://x.test"))) == "http://b.test:1"
    transport.close()


async def test_digest_proxy_tunnel_is_refused_clearly(
    make_client: MakeClient, digest_proxy: DigestProxy, h2_server: TLSServer, certs: Certificates
) -> None:
    """CONNECT tunnels answer Basic only (see docs/connections.md): a clear, redacted error."""
    client = make_client(base_url=h2_server.url, proxy=digest_proxy.url, verify_ssl=str(certs.ca))
    with pytest.raises(buttress.ConnectionError, match="407") as caught:
        await client.get("/users/1")
    assert isinstance(caught.value, httpx.ProxyError)
    assert "tunnels do not support" in str(caught.value)
    assert digest_proxy.password not in f"{caught.value!s} {caught.value!r}"
