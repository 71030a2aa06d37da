"""Backoff delays: exponential growth, the cap, and each jitter mode."""

from __future__ import annotations

import pytest

from buttress.policies.backoff import backoff_delay


def test_grows_exponentially_and_stops_at_the_cap() -> None:
    delays = [
        backoff_delay(n, factor=0.5, maximum=5.0, jitter="none", rng=lambda: 0.0)
        for n in range(1, 7)
    ]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("jitter", "rng", "expected"),
    [("full", 0.0, 0.0), ("full", 0.5, 1.0), ("equal", 0.0, 1.0), ("equal", 0.99, 1.99)],
)
def test_jitter_spreads_within_its_range(jitter: str, rng: float, expected: float) -> None:
    delay = backoff_delay(2, factor=1.0, maximum=10.0, jitter=jitter, rng=lambda: rng)  # type: ignore[arg-type]
    assert delay == pytest.approx(expected)


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert backoff_delay(10_000, factor=1.0, maximum=30.0, jitter="none", rng=lambda: 0) == 30.0
