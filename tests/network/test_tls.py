"""TLS, mTLS, minimum TLS version and HTTP/2 against real hypercorn servers on 127.0.0.1."""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import Callable

import httpx
import pytest

import buttress
from buttress._network import ssl_context
from tests.conftest import Either
from tests.servers import Certificates, TLSServer

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


async def test_verification_is_on_by_default(make_client: MakeClient, h2_server: TLSServer) -> None:
    client = make_client(base_url=h2_server.url, trust_env=False)
    with pytest.raises(buttress.ConnectionError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await client.get("/users/1")
    assert isinstance(caught.value, httpx.ConnectError)


async def test_custom_ca_bundle_path(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=h2_server.url, verify_ssl=str(certs.ca))
    assert (await client.get("/users/1")).json()["name"] == "Ada Lovelace"


async def test_custom_ssl_context(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    client = make_client(base_url=h2_server.url, verify_ssl=context)
    assert (await client.get("/users/2")).status_code == 200


async def test_ca_bundle_from_environment(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    settings = buttress.ButtressSettings(ca_bundle=str(certs.ca))
    client = make_client(base_url=h2_server.url, settings=settings)
    assert (await client.get("/users/1")).status_code == 200


async def test_verify_false_warns_once_per_client(
    make_client: MakeClient, h2_server: TLSServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="buttress"):
        client = make_client(base_url=h2_server.url, verify_ssl=False)
        await client.get("/users/1")
        await client.get("/users/2")
    warnings = [r for r in caplog.records if "verification is disabled" in r.getMessage()]
    assert len(warnings) == 1


async def test_mtls_presents_the_client_certificate(
    make_client: MakeClient, mtls_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=mtls_server.url, verify_ssl=str(certs.ca), cert=str(certs.client))
    assert (await client.get("/users/1")).json()["id"] == 1


async def test_mtls_server_refuses_a_client_without_certificate(
    make_client: MakeClient, mtls_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=mtls_server.url, verify_ssl=str(certs.ca))
    with pytest.raises(buttress.ConnectionError):
        await client.get("/users/1")


async def test_client_certificate_from_environment(
    make_client: MakeClient, mtls_server: TLSServer, certs: Certificates
) -> None:
    settings = buttress.ButtressSettings(ca_bundle=str(certs.ca), client_cert=str(certs.client))
    client = make_client(base_url=mtls_server.url, settings=settings)
    assert (await client.get("/users/1")).status_code == 200


def test_unreadable_client_certificate_is_a_configuration_error() -> None:
    with pytest.raises(buttress.ConfigurationError, match="client certificate"):
        buttress.Client(cert="/nonexistent/client.pem")


async def test_min_tls_13_refuses_a_tls12_only_server(
    make_client: MakeClient, tls12_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=tls12_server.url, verify_ssl=str(certs.ca), min_tls_version="1.3")
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/users/1")
    message = str(caught.value)
    assert "TLS 1.3 or newer" in message
    assert "min_tls_version='1.3'" in message
    assert isinstance(caught.value, httpx.ConnectError)


async def test_min_tls_12_accepts_a_tls12_server(
    make_client: MakeClient, tls12_server: TLSServer, certs: Certificates
) -> None:
    settings = buttress.ButtressSettings(min_tls_version="1.2")
    client = make_client(base_url=tls12_server.url, verify_ssl=str(certs.ca), settings=settings)
    assert (await client.get("/users/1")).status_code == 200


def test_min_tls_version_is_validated() -> None:
    with pytest.raises(buttress.ConfigurationError, match=r"'1\.2' or '1\.3'"):
        ssl_context(min_tls_version="1.1")  # type: ignore[arg-type]


def test_min_tls_version_applies_to_a_given_context() -> None:
    context = ssl_context(ssl.create_default_context(), min_tls_version="1.3")
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3


async def test_http2_is_negotiated_with_alpn(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=h2_server.url, verify_ssl=str(certs.ca), http2=True)
    response = await client.get("/users/1")
    assert response.http_version == "HTTP/2"
    assert response.json()["name"] == "Ada Lovelace"


async def test_a_deadline_that_cuts_an_http2_stream_leaves_the_connection_serving(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    # An async client cancels the stream at the deadline; the connection it shares with
    # other streams must go on serving them.
    client = make_client(base_url=h2_server.url, verify_ssl=str(certs.ca), http2=True)
    assert (await client.get("/users/1")).http_version == "HTTP/2"
    with pytest.raises(buttress.TimeoutError, match="ran out during attempt 1"):
        await client.get("/slow", params={"delay": 5}, timeout=buttress.TimeoutConfig(total=0.3))
    for _ in range(3):
        response = await client.get("/users/1")
        assert (response.http_version, response.status_code) == ("HTTP/2", 200)


async def test_http2_falls_back_to_http11(
    make_client: MakeClient, h11_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=h11_server.url, verify_ssl=str(certs.ca), http2=True)
    response = await client.get("/users/1")
    assert response.http_version == "HTTP/1.1"
    assert response.status_code == 200


async def test_http2_is_off_by_default(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    client = make_client(base_url=h2_server.url, verify_ssl=str(certs.ca))
    assert (await client.get("/users/1")).http_version == "HTTP/1.1"


async def test_http2_from_environment(
    make_client: MakeClient, h2_server: TLSServer, certs: Certificates
) -> None:
    settings = buttress.ButtressSettings(http2=True, ca_bundle=str(certs.ca))
    client = make_client(base_url=h2_server.url, settings=settings)
    assert (await client.get("/users/1")).http_version == "HTTP/2"


@pytest.mark.parametrize("cls", [buttress.Client, buttress.AsyncClient])
def test_http2_without_h2_names_the_extra(
    cls: type[buttress.Client] | type[buttress.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "h2", None)  # what an install without h2 looks like
    with pytest.raises(buttress.ConfigurationError, match=r"buttress\[http2\]"):
        cls(http2=True)
