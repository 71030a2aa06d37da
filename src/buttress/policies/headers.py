"""Parsers for the response headers that steer client behaviour.

All parsers are total: a malformed value gives ``None`` (logged at DEBUG),
never an exception, because a server's typo must not break a caller.
"""

from __future__ import annotations

import logging
from datetime import timezone
from email.utils import parsedate_to_datetime

import httpx

__all__ = ["parse_retry_after"]

logger = logging.getLogger("buttress.headers")

# A delay past this is nonsense, not a plan (a year); clamping keeps the arithmetic finite.
_MAX_DELAY = 365 * 24 * 3600.0


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, _MAX_DELAY)


def parse_retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait according to ``Retry-After`` (or ``retry-after-ms``), or ``None``.

    Both RFC 9110 forms are understood: delta-seconds and an HTTP-date, which is
    measured against ``now`` (epoch seconds). A date in the past means "now" (0).

    Example:
        >>> parse_retry_after(httpx.Headers({"Retry-After": "120"}), now=0)
        120.0
        >>> date = httpx.Headers({"Retry-After": "Thu, 01 Jan 1970 00:01:00 GMT"})
        >>> parse_retry_after(date, now=0)
        60.0
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        parsed = _parse_seconds(milliseconds.strip())
        if parsed is not None:
            return parsed / 1000.0
        logger.debug("ignoring malformed retry-after-ms header %r", milliseconds[:100])
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() or value.replace(".", "", 1).isdigit():
        return _parse_seconds(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        logger.debug("ignoring malformed Retry-After header %r", value[:100])
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, min(when.timestamp() - now, _MAX_DELAY))
