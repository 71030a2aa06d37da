"""A caller's ``ssl.SSLContext`` is never changed once a client is built on it (SPEC 8.3).

``cert`` and ``min_tls_version`` are applied to a given context when the first
client is built on it; a later client (``with_options`` included) asking for
another certificate or minimum version is refused, as changing the shared context
would change the clients already using it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

import buttress
from tests.conftest import Either
from tests.servers import Certificates, TLSServer

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


async def _close(copy: buttress.Client | buttress.AsyncClient) -> None:
    if isinstance(copy, buttress.AsyncClient):
        await copy.aclose()
    else:
        copy.close()


@pytest.mark.parametrize(
    "change",
    [{"cert": "client"}, {"min_tls_version": "1.3"}, {"cert": "client", "min_tls_version": "1.3"}],
    ids=["cert", "min_tls_version", "both"],
)
async def test_with_options_never_changes_the_context_the_original_uses(
    make_client: MakeClient,
    mtls_server: TLSServer,
    certs: Certificates,
    change: dict[str, str],
) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    minimum = context.minimum_version
    original = make_client(base_url=mtls_server.url, verify_ssl=context, retry=False)
    with pytest.raises(buttress.ConnectionError):  # no client certificate: refused
        await original.get("/users/1")
    options = {k: str(certs.client) if k == "cert" else v for k, v in change.items()}
    with pytest.raises(buttress.ConfigurationError, match="a client already uses that context"):
        original.client.with_options(**options)
    with pytest.raises(buttress.ConfigurationError, match="a client already uses that context"):
        make_client(base_url=mtls_server.url, verify_ssl=context, **options)
    assert context.minimum_version == minimum
    with pytest.raises(buttress.ConnectionError):  # still no client certificate
        await original.get("/users/1")


async def test_a_context_gets_cert_and_min_tls_version_once_at_construction(
    make_client: MakeClient, mtls_server: TLSServer, certs: Certificates
) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    client = make_client(
        base_url=mtls_server.url, verify_ssl=context, cert=str(certs.client), min_tls_version="1.3"
    )
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    assert (await client.get("/users/1")).status_code == 200
    # The same settings again (a with_options copy keeps them): nothing to change, allowed.
    copy = client.client.with_options(headers={"X-Copy": "1"})
    try:
        assert (await Either(copy).get("/users/1")).status_code == 200
    finally:
        await _close(copy)
    other = make_client(base_url=mtls_server.url, verify_ssl=context)  # asks for nothing
    assert (await other.get("/users/2")).status_code == 200


async def test_a_minimum_the_context_already_has_is_no_change(
    make_client: MakeClient, h11_server: TLSServer, certs: Certificates
) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    client = make_client(base_url=h11_server.url, verify_ssl=context)
    copy = client.client.with_options(min_tls_version="1.2")
    try:
        assert (await Either(copy).get("/users/1")).status_code == 200
    finally:
        await _close(copy)
