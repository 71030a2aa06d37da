"""Correlated logs: the request id in a buttress log line is the one the server received.

Run it as-is: it starts the bundled demo API on 127.0.0.1.
"""

from __future__ import annotations

import logging
import sys

from buttress import Client, LoggingMiddleware
from buttress.testing import DemoServer


def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s [%(request_id)s] %(message)s"))
    log = logging.getLogger("buttress")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with DemoServer() as server, Client(base_url=server.url) as client:
            echoed = client.get("/echo", params={"api_key": "never-logged"}).json()
            print(f"the server saw X-Request-ID {echoed['headers']['x-request-id']}")
            print(f"and traceparent {echoed['headers']['traceparent']}")
            with client.with_middleware(LoggingMiddleware(level="INFO")) as audited:
                audited.get("/users/1")
    finally:
        log.removeHandler(handler)


if __name__ == "__main__":
    main()
