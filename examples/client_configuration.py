"""Custom configuration: timeouts per phase, retries, headers, HTTP/2, redirects.

The demo API speaks plain HTTP/1.1, so ``http2=True`` falls back to it (HTTP/2 is
negotiated over TLS). ``backoff_factor`` is smaller than the default 0.5 so the
retried call below takes a fraction of a second.
Runs as-is against the bundled demo API: ``python examples/client_configuration.py``.
"""

from __future__ import annotations

from buttress import Client, RetryConfig, TimeoutConfig
from buttress.testing import DemoServer


def main(base_url: str) -> None:
    client = Client(
        base_url=base_url,
        auth=("bearer", "your-token"),
        timeout=TimeoutConfig(connect=5.0, read=30.0, write=30.0, pool=10.0),
        retry=RetryConfig(
            max_attempts=5,
            retry_statuses=frozenset({429, 500, 502, 503, 504}),
            backoff_factor=0.05,
            backoff_max=60.0,
        ),
        headers={"X-Custom-Header": "value"},
        http2=True,
        follow_redirects=True,
        max_redirects=10,
    )
    with client:
        sent = client.get("/echo").json()["headers"]
        print(f"X-Custom-Header: {sent['x-custom-header']}")
        print(f"Authorization scheme: {sent['authorization'].split()[0]}")

        response = client.get("/flaky", params={"key": "config", "failures": 3, "status": 503})
        print(f"/flaky: {response.status_code} after {response.attempts} attempts")

        response = client.get("/redirect", params={"to": "/users/2"})
        print(
            f"/redirect -> {response.url.path}: {response.json()['name']} ({response.http_version})"
        )


if __name__ == "__main__":
    with DemoServer() as server:
        main(server.url)
