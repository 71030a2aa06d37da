"""The circuit breaker state machine: every transition, on a fake clock."""

from __future__ import annotations

import logging

import httpx
import pytest

import buttress
from buttress.policies.breaker import (
    Circuit,
    CircuitBreaker,
    CircuitBreakerConfig,
    Permit,
    Rejection,
    is_breaker_failure,
)
from buttress.stores.breaker import SharedCircuit
from buttress.testing import FakeClock


def make(**config: object) -> tuple[Circuit, FakeClock]:
    clock = FakeClock()
    return Circuit(CircuitBreakerConfig(**config), clock), clock


def call(circuit: Circuit | SharedCircuit, *, failure: bool, duration: float = 0.01) -> None:
    assert isinstance(circuit, Circuit)  # no store here: the per-process circuit
    permit = circuit.acquire()
    assert isinstance(permit, Permit)
    circuit.record(permit, failure=failure, duration=duration)


def state(circuit: Circuit | SharedCircuit | CircuitBreaker) -> str:
    """The state as a plain string (so the type checker does not narrow it between calls)."""
    return circuit.state


def open_circuit(circuit: Circuit) -> None:
    while state(circuit) != "open":
        call(circuit, failure=True)


def test_closed_opens_after_failure_threshold_consecutive_failures() -> None:
    circuit, _ = make(failure_threshold=3)
    call(circuit, failure=True)
    call(circuit, failure=True)
    call(circuit, failure=False)  # a success resets the run
    call(circuit, failure=True)
    call(circuit, failure=True)
    assert state(circuit) == "closed"
    call(circuit, failure=True)
    assert state(circuit) == "open"


def test_open_rejects_with_the_time_until_half_open() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=30)
    open_circuit(circuit)
    clock.advance(10)
    rejection = circuit.acquire()
    assert isinstance(rejection, Rejection)
    assert rejection.retry_after == pytest.approx(20)
    assert circuit.metrics.rejected_count == 1


def test_open_goes_half_open_after_the_reset_timeout() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=30)
    open_circuit(circuit)
    clock.advance(29.9)
    assert state(circuit) == "open"
    clock.advance(0.1)
    assert state(circuit) == "half_open"


def test_half_open_closes_after_success_threshold_successes() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=5, success_threshold=2)
    open_circuit(circuit)
    clock.advance(5)
    call(circuit, failure=False)
    assert state(circuit) == "half_open"
    call(circuit, failure=False)
    assert state(circuit) == "closed"


def test_half_open_reopens_on_a_failure() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=5)
    open_circuit(circuit)
    clock.advance(5)
    call(circuit, failure=True)
    assert state(circuit) == "open"
    rejection = circuit.acquire()
    assert isinstance(rejection, Rejection)
    assert rejection.retry_after == pytest.approx(5)  # the timeout starts again


def test_half_open_admits_at_most_half_open_max_calls_at_once() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=5, half_open_max_calls=2)
    open_circuit(circuit)
    clock.advance(5)
    first, second, third = circuit.acquire(), circuit.acquire(), circuit.acquire()
    assert isinstance(first, Permit)
    assert isinstance(second, Permit)
    assert isinstance(third, Rejection)
    assert third.retry_after == 0.0
    circuit.release(first)  # a cancelled call gives its slot back
    assert isinstance(circuit.acquire(), Permit)


def test_failure_rate_opens_only_after_minimum_calls() -> None:
    circuit, _ = make(
        failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=4, sampling_duration=60
    )
    call(circuit, failure=True)
    assert state(circuit) == "closed"  # one early failure is not a rate
    call(circuit, failure=False)
    call(circuit, failure=True)
    assert state(circuit) == "closed"
    call(circuit, failure=False)  # 2 of 4 failed: 50%
    assert state(circuit) == "open"


def test_failure_rate_forgets_calls_outside_the_window() -> None:
    circuit, clock = make(
        failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=2, sampling_duration=10
    )
    call(circuit, failure=True)
    clock.advance(11)
    call(circuit, failure=False)
    call(circuit, failure=False)
    call(circuit, failure=True)
    assert state(circuit) == "closed"  # 1 of 3 in the window


def test_slow_calls_open_the_circuit() -> None:
    circuit, _ = make(
        failure_threshold=100, slow_call_duration=2.0, slow_call_rate_threshold=0.5, minimum_calls=4
    )
    for duration in (0.1, 3.0, 0.1):
        call(circuit, failure=False, duration=duration)
    assert state(circuit) == "closed"
    call(circuit, failure=False, duration=2.5)
    assert state(circuit) == "open"
    assert circuit.metrics.slow_call_count == 2


def test_a_slow_trial_call_reopens_a_half_open_circuit() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=1, slow_call_duration=1.0)
    open_circuit(circuit)
    clock.advance(1)
    call(circuit, failure=False, duration=5.0)
    assert state(circuit) == "open"


def test_results_from_before_a_state_change_are_ignored() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=1, success_threshold=1)
    stale = circuit.acquire()
    assert isinstance(stale, Permit)
    open_circuit(circuit)
    clock.advance(1)
    circuit.record(stale, failure=False, duration=0.1)  # sent while closed, answered now
    assert state(circuit) == "half_open"


def test_a_call_from_before_a_reset_counts_for_nothing_after_it() -> None:
    circuit, _ = make(failure_threshold=1)
    stale = circuit.acquire()
    circuit.reset()
    fresh = circuit.acquire()
    assert isinstance(stale, Permit)
    assert isinstance(fresh, Permit)
    assert fresh.generation != stale.generation
    circuit.record(stale, failure=True, duration=0.1)
    assert state(circuit) == "closed"
    circuit.record(fresh, failure=True, duration=0.1)
    assert state(circuit) == "open"


def test_force_open_force_close_and_reset() -> None:
    circuit, clock = make(failure_threshold=1, reset_timeout=1)
    circuit.force_open()
    clock.advance(100)
    assert state(circuit) == "open"  # no automatic half-open while forced
    rejection = circuit.acquire()
    assert isinstance(rejection, Rejection)
    assert rejection.retry_after is None
    circuit.force_close()
    call(circuit, failure=True)
    call(circuit, failure=True)
    assert state(circuit) == "closed"  # failures count but never trip it
    circuit.reset()
    call(circuit, failure=True)
    assert state(circuit) == "open"


def test_metrics_and_state_changes() -> None:
    circuit, clock = make(failure_threshold=2, reset_timeout=5, success_threshold=1)
    call(circuit, failure=False)
    call(circuit, failure=True)
    call(circuit, failure=True)
    circuit.acquire()
    clock.advance(5)
    call(circuit, failure=False)
    metrics = circuit.metrics
    assert (metrics.success_count, metrics.failure_count, metrics.rejected_count) == (2, 2, 1)
    assert metrics.last_failure_time == clock.time() - 5
    assert [(c.from_state, c.to_state) for c in metrics.state_changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_state_changes_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    circuit, _ = make(failure_threshold=1)
    with caplog.at_level(logging.INFO, logger="buttress.circuit_breaker"):
        call(circuit, failure=True)
    assert "closed -> open" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_per_host_circuits_are_independent() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1, per_host=True))
    call(breaker.for_host("a.test"), failure=True)
    assert state(breaker.for_host("a.test")) == "open"
    assert state(breaker.for_host("B.test")) == "closed"
    assert state(breaker) == "open"  # the worst state over hosts
    assert breaker.metrics.failure_count == 1
    assert set(breaker.circuits) == {"a.test", "b.test"}
    breaker.reset()
    assert state(breaker) == "closed"


def test_forcing_a_per_host_breaker_covers_hosts_seen_later() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(per_host=True, failure_threshold=1))
    breaker.force_open()
    assert state(breaker.for_host("new.test")) == "open"
    breaker.force_close()
    call(breaker.for_host("later.test"), failure=True)
    call(breaker.for_host("later.test"), failure=True)
    assert state(breaker.for_host("later.test")) == "closed"
    breaker.reset()
    assert state(breaker.for_host("other.test")) == "closed"
    assert "per_host=True" in repr(breaker)


def test_a_global_breaker_shares_one_circuit() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1))
    call(breaker.for_host("a.test"), failure=True)
    assert state(breaker.for_host("b.test")) == "open"
    breaker.force_close()
    assert state(breaker) == "closed"
    breaker.force_open()
    assert breaker.metrics.state == "open"


@pytest.mark.parametrize(
    ("outcome", "counts"),
    [
        (httpx.Response(500), True),
        (httpx.Response(503), True),
        (httpx.Response(404), False),
        (httpx.Response(200), False),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.PoolTimeout("pool full"), None),
        (httpx.InvalidURL("bad"), None),
        (httpx.UnsupportedProtocol("ftp"), None),
        (buttress.ValidationError("bad model"), None),
    ],
)
def test_what_counts_as_a_failure(outcome: httpx.Response | Exception, counts: bool | None) -> None:
    assert is_breaker_failure(CircuitBreakerConfig(), outcome) is counts


def test_excluded_exceptions_and_included_status_codes() -> None:
    config = CircuitBreakerConfig(
        excluded_exceptions=[httpx.ReadTimeout], included_status_codes={429}
    )
    assert is_breaker_failure(config, httpx.ReadTimeout("slow")) is None
    assert is_breaker_failure(config, httpx.Response(429)) is True
    assert is_breaker_failure(config, httpx.Response(500)) is False


@pytest.mark.parametrize(
    "excluded", [buttress.ReadTimeoutError, buttress.TimeoutError, httpx.TimeoutException]
)
def test_an_exception_excluded_by_our_name_is_excluded_as_the_layers_see_it(
    excluded: type[Exception],
) -> None:
    # The layers beneath the facade see httpx's exceptions; callers name the ones they catch.
    config = CircuitBreakerConfig(excluded_exceptions=[excluded])
    assert is_breaker_failure(config, httpx.ReadTimeout("slow")) is None
    assert is_breaker_failure(config, httpx.ConnectError("refused")) is True
