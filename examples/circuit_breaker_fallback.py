"""A circuit breaker: fail fast with a fallback while a service is down.

Five 503s open the circuit; the next call is not sent and the fallback answers.
``reset_timeout`` is half a second (30 s is a common production value) so the script can
watch the circuit go half-open and close again after two good calls. Retries
are off so each failure is counted once.
Runs as-is against the bundled demo API: ``python examples/circuit_breaker_fallback.py``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from buttress import CircuitBreakerConfig, CircuitBreakerOpenError, Client, ServerError
from buttress.testing import DemoServer

logger = logging.getLogger("circuit_breaker_fallback")


def get_cached_users() -> list[dict[str, Any]]:
    return [{"id": 1, "name": "Ada Lovelace (cached)"}]


def list_users(client: Client) -> list[dict[str, Any]]:
    try:
        response = client.get("/users")
    except CircuitBreakerOpenError as e:
        # Circuit is open, service is likely down
        logger.warning(f"Circuit breaker open, using fallback: {e}")
        return get_cached_users()
    users: list[dict[str, Any]] = response.json()["data"]
    return users


def main(base_url: str) -> None:
    client = Client(
        base_url=base_url,
        retry=False,
        circuit_breaker=CircuitBreakerConfig(
            failure_threshold=5, reset_timeout=0.5, success_threshold=2
        ),
    )
    assert client.circuit_breaker is not None
    with client:
        for _ in range(5):
            try:
                client.get("/status/503")
            except ServerError as e:
                logger.info(f"failure: {e.status_code}; circuit {client.circuit_breaker.state}")

        print(f"users: {[user['name'] for user in list_users(client)]}")

        time.sleep(0.5)
        # Monitor circuit state
        if client.circuit_breaker.state == "half_open":
            logger.info("Circuit recovering, testing connection...")
        for _ in range(2):
            print(f"got {len(list_users(client))} users; circuit {client.circuit_breaker.state}")


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="%(levelname)-7s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    with DemoServer() as server:
        main(server.url)
