"""Breaker transitions reach an on_state_change callback (a metrics collector's hook)."""

from __future__ import annotations

import pytest

from buttress import CircuitBreakerConfig, PrometheusCollector
from buttress.policies.breaker import CircuitBreaker
from buttress.testing import FakeClock


def test_state_changes_reach_the_collector() -> None:
    collector = PrometheusCollector()
    changes: list[tuple[str, str, str]] = []

    def listen(host: str, old: str, new: str) -> None:
        changes.append((host, old, new))
        collector.breaker_state_changed(host=host, old=old, new=new)

    config = CircuitBreakerConfig(failure_threshold=1, on_state_change=listen)
    breaker = CircuitBreaker(config, clock=FakeClock())
    breaker.force_open()
    assert changes[0][1:] == ("closed", "open")
    assert "open" in collector.render()


def test_a_broken_listener_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(host: str, old: str, new: str) -> None:
        raise RuntimeError("collector down")

    breaker = CircuitBreaker(CircuitBreakerConfig(on_state_change=broken), clock=FakeClock())
    breaker.force_open()
    assert breaker.state == "open"
    assert "on_state_change callback failed" in caplog.text
