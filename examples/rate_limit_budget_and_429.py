"""Client-side rate limiting, and handling a server's 429.

The server-side limit here is the demo's ``/status/429`` with a one-second
``Retry-After`` (the script waits for whatever the server says), and retries
are off so the ``RateLimitError`` reaches the ``except`` (with retries on, the
client would wait and resend by itself).
Runs as-is against the bundled demo API: ``python examples/rate_limit_budget_and_429.py``.
"""

from __future__ import annotations

import logging
import sys
import time

from buttress import Client, RateLimitConfig, RateLimitError
from buttress.testing import DemoServer

logger = logging.getLogger("rate_limit_budget_and_429")


def main(base_url: str) -> None:
    # Client-side rate limiting to avoid overwhelming the API
    client = Client(
        base_url=base_url,
        retry=False,
        rate_limit=RateLimitConfig(
            strategy="token_bucket", max_requests=100, time_window=60.0, burst_size=10
        ),
    )

    for user_id in range(1, 10):
        client.get(f"/users/{user_id}")

    # Check remaining capacity
    status = client.get_rate_limit_status()
    print(f"client-side budget after 9 calls: {status.remaining}/{status.limit}")
    if status.remaining is not None and status.remaining < 10:
        logger.warning(f"Rate limit nearly exhausted: {status.remaining} remaining")

    # Handle server-side rate limits
    try:
        response = client.get("/status/429", params={"retry_after": 1})
    except RateLimitError as e:
        logger.warning(f"Server rate limited, retry after {e.retry_after}s")
        time.sleep(e.retry_after or 0)
        response = client.get("/users")
    print(f"after waiting: {response.status_code}, {len(response.json()['data'])} users")
    client.close()


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="%(levelname)-7s %(name)s: %(message)s")
    with DemoServer() as server:
        main(server.url)
