"""Parsers for the response headers that steer client behaviour.

All parsers are total: a malformed value gives ``None`` (logged at DEBUG),
never an exception, because a server's typo must not break a caller.
"""

from __future__ import annotations

import logging
import re
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import NamedTuple

import httpx

__all__ = ["Link", "next_link", "parse_link_header", "parse_retry_after"]

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


class Link(NamedTuple):
    """One link of an RFC 8288 ``Link`` header: its target and its parameters.

    Parameter names are lower-cased; ``rels`` splits ``rel`` on whitespace
    (``rel="next last"`` is two relations) and lower-cases them.
    """

    url: str
    params: dict[str, str]

    @property
    def rels(self) -> tuple[str, ...]:
        """The link's relation types, lower-cased."""
        return tuple(self.params.get("rel", "").lower().split())


_LINK_TARGET = re.compile(r"\s*<([^>]*)>")
_LINK_PARAM = re.compile(r'\s*;\s*([^\s=;,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s;,]*))?')
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_link_header(value: str) -> list[Link]:
    """The links of an RFC 8288 ``Link`` header value, in order.

    Handles several links, quoted and bare parameter values, commas and
    semicolons inside ``<...>`` and quoted strings, and stops quietly at the
    first malformed part (keeping the links before it).

    Example:
        >>> header = '</repos?page=2>; rel="next", </repos?page=5>; rel="last"'
        >>> [(link.url, link.rels) for link in parse_link_header(header)]
        [('/repos?page=2', ('next',)), ('/repos?page=5', ('last',))]
    """
    links: list[Link] = []
    position = 0
    while position < len(value):
        target = _LINK_TARGET.match(value, position)
        if target is None:
            if value[position:].strip(" \t,"):
                logger.debug("ignoring malformed Link header part %r", value[position:][:100])
            break
        position = target.end()
        params: dict[str, str] = {}
        while (param := _LINK_PARAM.match(value, position)) is not None:
            position = param.end()
            name, raw = param.group(1).lower(), param.group(2) or ""
            if raw.startswith('"'):
                raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
            params.setdefault(name, raw)  # RFC 8288: later occurrences are ignored
        links.append(Link(target.group(1).strip(), params))
        while position < len(value) and value[position] in " \t":
            position += 1
        if position < len(value) and value[position] != ",":
            logger.debug("ignoring malformed Link header part %r", value[position:][:100])
            break
        position += 1
    return links


def next_link(
    headers: httpx.Headers, base: httpx.URL | str | None = None, rel: str = "next"
) -> str | None:
    """The URL of the ``rel`` (default ``next``) link in ``headers``, resolved against ``base``.

    Several ``Link`` headers are treated as one list, as RFC 9110 allows.

    Example:
        >>> headers = httpx.Headers({"Link": '</users?page=3>; rel="next"'})
        >>> next_link(headers, base="https://api.example.com/users?page=2")
        'https://api.example.com/users?page=3'
    """
    for value in headers.get_list("link"):
        for link in parse_link_header(value):
            if rel in link.rels:
                return str(httpx.URL(base).join(link.url)) if base is not None else link.url
    return None
