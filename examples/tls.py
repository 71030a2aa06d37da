"""TLS, mTLS and HTTP/2 against a local HTTPS server this script starts itself.

A throw-away certificate authority (trustme) signs a server certificate for
127.0.0.1 and a client certificate; hypercorn serves the demo API with them.
Needs the development dependencies (hypercorn, trustme) and ``buttress[http2]``.

Run: python examples/tls.py
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

import buttress
from buttress.testing import DemoAPI


@contextmanager
def https_server(
    folder: Path, *, alpn: list[str], require_client_cert: bool = False
) -> Iterator[tuple[str, Path, Path]]:
    """Serve the demo API over TLS; yields (url, CA bundle, client certificate)."""
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1")
    ca, cert, key, client = (folder / n for n in ("ca.pem", "srv.pem", "srv.key", "client.pem"))
    authority.cert_pem.write_to_path(str(ca))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    authority.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(client)
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = Config()
    config.bind, config.certfile, config.keyfile = [f"127.0.0.1:{port}"], str(cert), str(key)
    config.alpn_protocols, config.accesslog, config.errorlog = alpn, None, None
    if require_client_cert:  # demand a client certificate signed by our CA
        config.ca_certs, config.verify_mode = str(ca), ssl.CERT_REQUIRED
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    app: object = DemoAPI()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(serve(app, config, shutdown_trigger=stop.wait),),  # type: ignore[arg-type]
        daemon=True,
    )
    thread.start()
    while True:  # wait until it listens
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}", ca, client
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with https_server(folder, alpn=["h2", "http/1.1"]) as (url, ca, _):
            # Verification is on: without our CA the server is refused.
            with buttress.Client(base_url=url) as client:
                try:
                    client.get("/users/1")
                except buttress.ConnectionError as exc:
                    print("without the CA bundle:", exc)
            # A custom CA bundle, and HTTP/2 negotiated with ALPN.
            with buttress.Client(base_url=url, verify_ssl=str(ca), http2=True) as client:
                response = client.get("/users/1")
                print("with the CA bundle:", response.json()["name"], response.http_version)

        with https_server(folder, alpn=["http/1.1"]) as (url, ca, _):
            # HTTP/2 asked for, the server only speaks HTTP/1.1: graceful fallback.
            fallback = buttress.Client(base_url=url, verify_ssl=str(ca), http2=True)
            with fallback:
                print("fallback:", fallback.get("/users/2").http_version)

        with https_server(folder, alpn=["http/1.1"], require_client_cert=True) as server:
            url, ca, client_pem = server
            # mTLS: the server demands a client certificate.
            mtls = buttress.Client(
                base_url=url, verify_ssl=str(ca), cert=str(client_pem), min_tls_version="1.2"
            )
            with mtls:
                print("mTLS:", mtls.get("/users/3").json()["name"])


if __name__ == "__main__":
    main()
