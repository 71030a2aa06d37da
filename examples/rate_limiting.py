"""Rate limiting: the client paces itself and reads a server's limits.

Runs as-is against the bundled demo API: ``uv run python examples/rate_limiting.py``.
"""

from __future__ import annotations

import time

import httpx

from buttress import Client, RateLimitConfig, RateLimitError
from buttress.testing import DemoServer


def pacing(url: str) -> None:
    """Ten requests through a limit of 5 per second, evenly spaced: about 1.8 s."""
    limit = RateLimitConfig(max_requests=5, time_window=1.0, burst_size=1)
    with Client(base_url=url, rate_limit=limit) as client:
        start = time.monotonic()
        for user_id in range(1, 11):
            client.get(f"/users/{user_id}")
        print(f"10 requests at 5/s took {time.monotonic() - start:.1f}s")
        status = client.get_rate_limit_status()
        print(f"client-side budget: {status.remaining}/{status.limit}, {status.queued} queued")


def server_limits(url: str) -> None:
    """The demo API allows 3 requests per minute per key; the client believes it."""
    with Client(base_url=url, rate_limit=RateLimitConfig(queue_timeout=5.0)) as client:
        for _ in range(4):
            try:
                response = client.get("/rate-limited", params={"key": "tour", "limit": 3})
            except RateLimitError as e:
                # The server said 0 remaining until the reset: nothing was sent.
                print(f"held back by the client: retry in {e.retry_after:.0f}s", end=" ")
                print(f"(limited_by_client={e.limited_by_client})")
                break
            info = response.rate_limit
            assert info is not None
            print(f"server: {info.remaining}/{info.limit} left, policy {info.policy!r}")
        host = httpx.URL(url).netloc.decode()  # "127.0.0.1:<port>"
        server = client.get_rate_limit_status().servers[host]
        assert server.reset_at is not None  # the demo API always says when its window resets
        reset = server.reset_at.isoformat(timespec="seconds")
        print(f"latest from {host}: remaining={server.remaining}, reset_at={reset}")


def main() -> None:
    with DemoServer() as server:
        pacing(server.url)
        server_limits(server.url)


if __name__ == "__main__":
    main()
