"""Exponential backoff with jitter: how long to wait before retry number ``n``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

__all__ = ["Jitter", "backoff_delay"]

Jitter: TypeAlias = Literal["full", "equal", "none"]
"""``"full"``: uniform in ``[0, d]``; ``"equal"``: uniform in ``[d/2, d]``; ``"none"``: ``d``."""


def backoff_delay(
    retry: int,
    *,
    factor: float,
    maximum: float,
    jitter: Jitter,
    rng: Callable[[], float],
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry).

    The ceiling is ``factor * 2 ** (retry - 1)``, capped at ``maximum``; the
    jitter then spreads clients apart so they do not retry in lockstep
    (AWS Architecture Blog, "Exponential Backoff And Jitter"). ``rng`` returns a
    float in ``[0, 1)``, injected so tests are deterministic.

    Examples:
        >>> [backoff_delay(n, factor=0.5, maximum=3, jitter="none", rng=lambda: 0.0)
        ...  for n in (1, 2, 3, 4, 5)]
        [0.5, 1.0, 2.0, 3, 3]
        >>> backoff_delay(3, factor=0.5, maximum=30, jitter="equal", rng=lambda: 0.5)
        1.5
    """
    exponent = min(retry - 1, 62)  # 2**62 is already past any sane maximum
    ceiling = min(maximum, factor * 2.0**exponent)
    if jitter == "full":
        return ceiling * rng()
    if jitter == "equal":
        return ceiling / 2 + (ceiling / 2) * rng()
    return ceiling
