"""Breaker transitions reach an on_state_change callback (a metrics collector's hook)."""

from __future__ import annotations

import inspect

import pytest

from buttress import CircuitBreakerConfig, MetricsCollector, PrometheusCollector
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


def test_a_collector_written_to_the_protocol_hears_the_breaker() -> None:
    # The signature the protocol declares is the one the breaker calls: a collector
    # copying it exactly, wired as the docs say, receives every transition.
    class Transitions:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, str]] = []

        def breaker_state_changed(self, host: str, old: str, new: str) -> None:
            self.seen.append((host, old, new))

    declared = inspect.signature(MetricsCollector.breaker_state_changed)
    assert inspect.signature(Transitions.breaker_state_changed) == declared
    collector = Transitions()
    config = CircuitBreakerConfig(on_state_change=collector.breaker_state_changed)
    breaker = CircuitBreaker(config, clock=FakeClock())
    breaker.force_open()
    breaker.force_close()
    assert [change[1:] for change in collector.seen] == [("closed", "open"), ("open", "closed")]
