"""A tour of the resilience layers against the bundled demo API: a retry, then a breaker.

Run it with ``python examples/resilience.py``.
"""

from __future__ import annotations

import logging
import time

import buttress
from buttress.testing import DemoServer


def retry_tour(url: str) -> None:
    retry = buttress.RetryConfig(max_attempts=3, backoff_factor=0.1)
    with buttress.Client(base_url=url, retry=retry) as client:
        response = client.get("/flaky", params={"key": "tour", "failures": 2})
        print(f"/flaky answered {response.status_code} after {response.attempts} attempts")


def breaker_tour(url: str) -> None:
    config = buttress.CircuitBreakerConfig(
        failure_threshold=2, reset_timeout=0.5, success_threshold=1
    )
    with buttress.Client(base_url=url, retry=False, circuit_breaker=config) as client:
        breaker = client.circuit_breaker
        assert breaker is not None
        for _ in range(2):
            try:
                client.get("/status/503")
            except buttress.ServerError as error:
                print(f"failure: {error.status_code}")
        print(f"breaker is {breaker.state}")
        try:
            client.get("/users/1")
        except buttress.CircuitBreakerOpenError as error:
            print(f"not sent: circuit open for {error.host}, retry in {error.retry_after:.1f}s")
        time.sleep(0.5)
        print(f"breaker is {breaker.state}")
        print(f"trial call: {client.get('/users/1').json()['name']}")
        print(f"breaker is {breaker.state}; changes: {len(breaker.metrics.state_changes)}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
    with DemoServer() as server:
        retry_tour(server.url)
        breaker_tour(server.url)
