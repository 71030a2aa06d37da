"""Proxies: HTTP and SOCKS5 with credentials, per-call proxies and bypass hosts.

The script starts the demo API and pproxy (an HTTP + SOCKS5 proxy from PyPI,
a development dependency) on 127.0.0.1 and sends requests through it.
SOCKS needs ``buttress[socks]``.

Run: python examples/proxies.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import buttress
from buttress.testing import DemoServer

USER, PASSWORD = "demo", "proxy-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_pproxy(port: int) -> subprocess.Popen[bytes]:
    """pproxy answering HTTP and SOCKS5 on one port, demanding USER:PASSWORD."""
    listen = f"http+socks5://127.0.0.1:{port}#{USER}:{PASSWORD}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pproxy", "-l", listen, "--auth", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process
        except OSError:
            time.sleep(0.02)


def main() -> None:
    port = free_port()
    proxy = start_pproxy(port)
    http_proxy = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
    socks_proxy = f"socks5://{USER}:{PASSWORD}@127.0.0.1:{port}"
    try:
        with DemoServer() as demo:
            # Every request through an HTTP proxy with Basic proxy authentication.
            with buttress.Client(base_url=demo.url, proxy=http_proxy) as client:
                print("via HTTP proxy:", client.get("/users/1").json()["name"])
                print("the password stays hidden:", client._transport)

            # SOCKS5 with username and password.
            with buttress.Client(base_url=demo.url, proxy=socks_proxy) as client:
                print("via SOCKS5:", client.get("/users/2").json()["name"])

            # No proxy for the client (the environment is ignored too), one for a call;
            # the per-call route keeps its own pooled connections for later calls.
            with buttress.Client(base_url=demo.url, proxy=False) as client:
                print("direct:", client.get("/users/3").json()["name"])
                print(
                    "this call via SOCKS5:",
                    client.get("/users/4", proxy=socks_proxy).json()["name"],
                )

            # Hosts that never go through the proxy.
            with buttress.Client(
                base_url=demo.url, proxy=http_proxy, proxy_bypass=["127.0.0.1"]
            ) as client:
                print("bypassed:", client.get("/users/5").json()["name"])

            # Wrong credentials: the proxy refuses, and the message does not show them.
            wrong = f"http://{USER}:not-the-password@127.0.0.1:{port}"
            with buttress.Client(base_url=demo.url, proxy=wrong) as client:
                try:
                    client.get("/users/1")
                except buttress.ClientError as exc:
                    print("refused:", type(exc).__name__, "password shown:", "not-the" in str(exc))
    finally:
        proxy.terminate()
        proxy.wait()


if __name__ == "__main__":
    main()
