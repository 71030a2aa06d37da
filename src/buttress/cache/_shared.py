"""What the shared backends (Redis, Memcached) have in common: entry bytes and expiry.

An entry is stored in the disk cache's format (lengths, a checksum keyed with the
cache's salt and the entry's key, metadata, body), so a value altered on the
server, or moved under another key, is never served. Its server-side expiry is
when the cache layer says it stops being useful (:data:`USEFUL_UNTIL`: fresh,
then its stale windows), plus ``revalidation_window`` when it has a validator, so
a stale entry can still be confirmed by a cheap ``304``.
"""

from __future__ import annotations

import math
import uuid

from hishel import Entry, Headers, Request, Response

from .._clock import Clock
from .._exceptions import ConfigurationError
from ..policies.cache import USEFUL_UNTIL, StoredHeaders
from .disk import _Damaged, _pack, _unpack

__all__ = ["LONGEST_EXPIRY", "check_window", "entry_of", "expiry_seconds", "milliseconds", "pack"]

LONGEST_EXPIRY = 30 * 86_400.0
"""The longest server-side expiry (Memcached reads a longer one as a date)."""


def check_window(revalidation_window: float) -> float:
    """``revalidation_window`` as a float, or a clear error."""
    if isinstance(revalidation_window, bool) or not (
        isinstance(revalidation_window, int | float) and revalidation_window >= 0
    ):
        raise ConfigurationError(
            f"revalidation_window must be a number of seconds >= 0, not {revalidation_window!r}"
        )
    return float(revalidation_window)


def expiry_seconds(headers: Headers, clock: Clock, revalidation_window: float) -> float:
    """Seconds from now the entry is worth keeping (0 or less: not worth storing)."""
    values = headers.get_list(USEFUL_UNTIL)
    try:
        until = float(values[0]) if values else clock.time()
    except ValueError:
        until = clock.time()
    if "etag" in headers or "last-modified" in headers:
        until += revalidation_window
    return min(until - clock.time(), LONGEST_EXPIRY)


def pack(
    salt: bytes, key: str, request: Request, status: int, headers: Headers, body: bytes
) -> bytes:
    return _pack(salt, key, request, status, headers, body)


def entry_of(salt: bytes, key: str, id: uuid.UUID, data: bytes) -> Entry | None:
    """The entry ``data`` holds, or ``None`` when it does not check out under ``key``.

    Its headers are read as it is read (:class:`StoredHeaders`): a memory tier that
    keeps it answers every later hit without reading them again.
    """
    try:
        request, status, headers, body = _unpack(salt, key, data)
    except _Damaged:
        return None
    return Entry(id, request, Response(status, StoredHeaders.of(headers), iter((body,))))


def milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
