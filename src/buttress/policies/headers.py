"""Parsers for the response headers that steer client behaviour.

All parsers are total: a malformed value gives ``None`` (logged at DEBUG),
never an exception, because a server's typo must not break a caller.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import NamedTuple

import httpx

__all__ = [
    "Link",
    "RateLimitInfo",
    "asked_wait",
    "next_link",
    "parse_challenges",
    "parse_link_header",
    "parse_rate_limit",
    "parse_retry_after",
    "rate_limit_headers",
]

logger = logging.getLogger("buttress.headers")

# A delay past this is nonsense, not a plan (a year); clamping keeps the arithmetic finite.
_MAX_DELAY = 365 * 24 * 3600.0
# A count of requests past this is nonsense (a server's limit, remaining, used): ignored.
_MAX_COUNT = 10**18


# Digits with an optional fraction, as the first member of a list: "120" and "120, 120" (one
# header sent twice, which RFC 9110 5.3 lets a recipient combine). float() alone would
# also take "inf", "1e999", "1_000" and signs, which no server means as a delay.
_DECIMAL = re.compile(r"(\d+(?:\.\d+)?)\s*(?:,.*)?", re.DOTALL)


def _decimal(value: str) -> float | None:
    """A plain decimal; 309 digits and more are ``inf`` (a wait: as long as can be)."""
    match = _DECIMAL.fullmatch(value.strip())
    return None if match is None else float(match.group(1))


def _parse_seconds(value: str) -> float | None:
    seconds = _decimal(value)
    return None if seconds is None else min(seconds, _MAX_DELAY)


def parse_retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait according to ``Retry-After`` (or ``retry-after-ms``), or ``None``.

    Both RFC 9110 forms are understood: delta-seconds and an HTTP-date, which is
    measured against ``now`` (epoch seconds). A date in the past means "now" (0).

    Examples:
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
    seconds = _parse_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        logger.debug("ignoring malformed Retry-After header %r", value[:100])
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, min(when.timestamp() - now, _MAX_DELAY))


# --- rate-limit headers -----------------------------------------------------------------------

# A reset value above this is a point in time (epoch seconds), below it a delay: no server
# means "reset in 31 years", and no epoch clock reads 2001 any more.
_EPOCH_THRESHOLD = 1_000_000_000
_EPOCH_MS_THRESHOLD = 100_000_000_000  # past year 5138 in seconds: it must be milliseconds


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a server said about its rate limit, from whichever headers it sent.

    Attributes:
        limit: requests allowed per window (``None`` when not sent).
        remaining: requests left in the current window.
        reset_at: when the window resets (UTC).
        reset_after: seconds from the response until ``reset_at``.
        window: the window's length in seconds (IETF ``RateLimit-Policy`` ``w``).
        used: requests used in the window (GitHub ``x-ratelimit-used``).
        policy: the policy's name (IETF) or resource (GitHub ``x-ratelimit-resource``).

    Examples:
        >>> headers = httpx.Headers({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
        ...                          "X-RateLimit-Reset": "30"})
        >>> info = parse_rate_limit(headers, now=0)
        >>> (info.limit, info.remaining, info.reset_after, info.exhausted)
        (60, 0, 30.0, True)
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None
    reset_after: float | None = None
    window: float | None = None
    used: int | None = None
    policy: str | None = None

    @property
    def exhausted(self) -> bool:
        """True when the server said no requests remain before the reset."""
        return self.remaining is not None and self.remaining <= 0


# Old drafts allowed "100, 100;w=60": the first number is the one that counts.
# 18 digits at most: more is no count of requests (and int() refuses 4,300 and more).
_COUNT = re.compile(r"\s*(\d{1,18})\s*(?:[,;]|$)")  # below _MAX_COUNT


def _header_int(said: Mapping[str, str], name: str) -> int | None:
    value = said.get(name)
    if value is None:
        return None
    match = _COUNT.match(value)
    if match is None:
        logger.debug("ignoring malformed %s header %r", name, value[:100])
        return None
    return int(match.group(1))


def _reset_delay(value: str, now: float, name: str) -> float | None:
    """A reset given as delta-seconds, epoch seconds, epoch milliseconds or an HTTP-date."""
    value = value.strip()
    number = _decimal(value)
    if number is None:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            logger.debug("ignoring malformed %s header %r", name, value[:100])
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, min(when.timestamp() - now, _MAX_DELAY))
    if number >= _EPOCH_MS_THRESHOLD:
        number = number / 1000.0 - now
    elif number >= _EPOCH_THRESHOLD:
        number -= now
    return max(0.0, min(number, _MAX_DELAY))


_SF_MEMBER = re.compile(
    r"""\s*(?:"(?P<string>(?:[^"\\]|\\.)*)"|(?P<token>[A-Za-z*][\w:/!#$%&'*+.^`|~-]*)"""
    r"""(?:=(?P<value>"(?:[^"\\]|\\.)*"|[\w.:/*+-]+))?|(?P<number>-?\d+(?:\.\d+)?))"""
    r"""(?P<params>(?:\s*;\s*[a-z*][a-z0-9_.*-]*(?:=(?:"(?:[^"\\]|\\.)*"|[\w.:/*+-]+))?)*)\s*"""
)
_SF_PARAM = re.compile(r';\s*([a-z*][a-z0-9_.*-]*)(?:=("(?:[^"\\]|\\.)*"|[\w.:/*+-]+))?')


@dataclass(frozen=True, slots=True)
class _Member:
    name: str | None  # the string or token (or dictionary key)
    value: str | None  # a dictionary member's value
    params: dict[str, str]


def _structured_list(value: str, header: str) -> list[_Member] | None:
    """A small RFC 8941 list/dictionary reader: members with ``;key=value`` parameters."""
    members: list[_Member] = []
    position = 0
    while position < len(value):
        match = _SF_MEMBER.match(value, position)
        if match is None or match.end() == position:
            logger.debug("ignoring malformed %s header %r", header, value[:100])
            return None
        params = {
            key: raw.strip('"') if raw else "?1" for key, raw in _SF_PARAM.findall(match["params"])
        }
        name = match["string"] if match["string"] is not None else match["token"] or match["number"]
        raw_value = match["value"].strip('"') if match["value"] else None
        members.append(_Member(name, raw_value, params))
        position = match.end()
        if position < len(value):
            if value[position] != ",":
                logger.debug("ignoring malformed %s header %r", header, value[:100])
                return None
            position += 1
    return members


def _int(text: str | None, header: str) -> int | None:
    if text is None:
        return None
    number = _decimal(text)
    if number is None or not number < _MAX_COUNT:  # more is no count of requests
        logger.debug("ignoring malformed %s value %r", header, text[:100])
        return None
    return int(number)


def _ietf(said: Mapping[str, str], now: float) -> dict[str, object]:
    """``RateLimit`` / ``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers).

    The current drafts send named policies (``"default";r=0;t=30`` and
    ``"default";q=100;w=60``); draft 7 sent a dictionary (``limit=100,
    remaining=0, reset=30``). With several policies the most restrictive (fewest
    remaining) is the one that counts.
    """
    found: dict[str, object] = {}
    limits = _structured_list(said.get("ratelimit", ""), "RateLimit") or []
    as_dict = {m.name: m.value for m in limits if m.value is not None}
    if as_dict:  # draft 7 dictionary
        found["limit"] = _int(as_dict.get("limit"), "RateLimit")
        found["remaining"] = _int(as_dict.get("remaining"), "RateLimit")
        reset = as_dict.get("reset")
        found["reset_after"] = None if reset is None else _reset_delay(reset, now, "RateLimit")
    elif limits:
        tightest = min(
            (m for m in limits if _int(m.params.get("r"), "RateLimit") is not None),
            key=lambda m: _int(m.params["r"], "RateLimit") or 0,
            default=None,
        )
        if tightest is not None:
            found["policy"] = tightest.name
            found["remaining"] = _int(tightest.params.get("r"), "RateLimit")
            reset = tightest.params.get("t")
            found["reset_after"] = None if reset is None else _reset_delay(reset, now, "RateLimit")
    policies = _structured_list(said.get("ratelimit-policy", ""), "RateLimit-Policy") or []
    policy_header = "RateLimit-Policy"
    named = [m for m in policies if m.name == found.get("policy")]
    for member in named or policies[:1]:
        # current drafts: "name";q=100;w=60 - draft 7: 100;w=60
        quota = _int(member.params.get("q") if "q" in member.params else member.name, policy_header)
        found.setdefault("limit", quota)
        if "q" in member.params:
            found.setdefault("policy", member.name)
        window = _int(member.params.get("w"), policy_header)
        found["window"] = None if window is None else float(window)
    return {key: value for key, value in found.items() if value is not None}


def _prefixed(said: Mapping[str, str], prefix: str, now: float) -> dict[str, object]:
    """``<prefix>-Limit``, ``-Remaining``, ``-Reset`` (and GitHub's ``-Used``, ``-Resource``)."""
    found: dict[str, object] = {
        "limit": _header_int(said, f"{prefix}-limit"),
        "remaining": _header_int(said, f"{prefix}-remaining"),
        "used": _header_int(said, f"{prefix}-used"),
        "policy": said.get(f"{prefix}-resource"),
    }
    reset = said.get(f"{prefix}-reset")
    if reset is not None:
        found["reset_after"] = _reset_delay(reset, now, f"{prefix}-Reset")
    return {key: value for key, value in found.items() if value is not None}


_RATE_LIMIT_PREFIXES = (b"ratelimit", b"x-ratelimit", b"x-rate-limit")
_RATE_LIMIT_INITIALS = frozenset((b"r", b"R", b"x", b"X"))


def rate_limit_headers(headers: httpx.Headers) -> dict[str, str]:
    """The headers :func:`parse_rate_limit` reads, by lower-cased name: ``{}`` for most answers.

    Every answer is asked, so this is one pass over the raw names: only a name
    whose first letter could begin a rate-limit header is lower-cased, and only
    the headers found are decoded. A header sent twice is joined with ``", "``,
    as httpx does.

    Examples:
        >>> rate_limit_headers(httpx.Headers({"X-RateLimit-Remaining": "0", "Age": "1"}))
        {'x-ratelimit-remaining': '0'}
        >>> rate_limit_headers(httpx.Headers({"Content-Type": "application/json"}))
        {}
    """
    said: dict[str, str] = {}
    for name, value in headers.raw:
        if name[:1] in _RATE_LIMIT_INITIALS:
            lowered = name.lower()
            if lowered.startswith(_RATE_LIMIT_PREFIXES):
                key, text = lowered.decode(headers.encoding), value.decode(headers.encoding)
                said[key] = f"{said[key]}, {text}" if key in said else text
    return said


def parse_rate_limit(headers: httpx.Headers | dict[str, str], now: float) -> RateLimitInfo | None:
    """What the rate-limit headers in ``headers`` say, or ``None`` when there are none.

    Understood, most specific first: the IETF ``RateLimit`` and ``RateLimit-Policy``
    structured fields, the older ``RateLimit-Limit/-Remaining/-Reset`` trio, and
    ``X-RateLimit-Limit/-Remaining/-Reset`` (with GitHub's ``-Used`` and ``-Resource``;
    Twitter's ``X-Rate-Limit-...`` too).
    A reset above 10^9 is a point in time in epoch seconds (10^11: milliseconds),
    below it a delay in seconds; an HTTP-date works too. ``now`` is epoch seconds.
    ``headers`` may also be the dict :func:`rate_limit_headers` found in them.

    Examples:
        >>> github = httpx.Headers({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
        ...     "x-ratelimit-used": "1", "x-ratelimit-reset": "1700000060",
        ...     "x-ratelimit-resource": "core"})
        >>> info = parse_rate_limit(github, now=1_700_000_000)
        >>> (info.remaining, info.used, info.reset_after, info.policy)
        (4999, 1, 60.0, 'core')
        >>> ietf = httpx.Headers({"RateLimit": '"default";r=3;t=10',
        ...                       "RateLimit-Policy": '"default";q=100;w=60'})
        >>> parse_rate_limit(ietf, now=0)
        RateLimitInfo(limit=100, remaining=3, reset_at=datetime.datetime(1970, 1, 1, 0, 0, 10, \
tzinfo=datetime.timezone.utc), reset_after=10.0, window=60.0, used=None, policy='default')
    """
    said = headers if isinstance(headers, dict) else rate_limit_headers(headers)
    if not said:
        return None
    found: dict[str, object] = {}
    for source in (
        _prefixed(said, "x-rate-limit", now),  # Twitter's spelling
        _prefixed(said, "x-ratelimit", now),
        _prefixed(said, "ratelimit", now),
        _ietf(said, now),
    ):
        found.update(source)  # later sources are the more specific ones
    if not found:
        return None
    reset_after = found.get("reset_after")
    if isinstance(reset_after, float):
        found["reset_at"] = datetime.fromtimestamp(now + reset_after, tz=timezone.utc)
    return RateLimitInfo(**found)  # type: ignore[arg-type]


def asked_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds ``response`` asks a client to wait before it tries again, or ``None``.

    ``Retry-After`` first; a ``429`` without it that says its rate limit is used up
    asks for the wait until the limit resets (GitHub documents exactly this rule).

    Examples:
        >>> used_up = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
        >>> asked_wait(httpx.Response(429, headers=used_up), now=0)
        30.0
        >>> asked_wait(httpx.Response(503, headers={"Retry-After": "5"}), now=0)
        5.0
    """
    wait = parse_retry_after(response.headers, now)
    if wait is None and response.status_code == 429:
        info = parse_rate_limit(response.headers, now)
        if info is not None and info.exhausted:
            wait = info.reset_after
    return wait


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

    Examples:
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

    Examples:
        >>> headers = httpx.Headers({"Link": '</users?page=3>; rel="next"'})
        >>> next_link(headers, base="https://api.example.com/users?page=2")
        'https://api.example.com/users?page=3'
    """
    for value in headers.get_list("link"):
        for link in parse_link_header(value):
            if rel in link.rels:
                return str(httpx.URL(base).join(link.url)) if base is not None else link.url
    return None


# --- authentication challenges ----------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CHALLENGE_SCHEME = re.compile(rf"[\s,]*({_TOKEN})")
_AUTH_PARAM = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})')
_TOKEN68 = re.compile(r"\s+([A-Za-z0-9._~+/-]+=*)\s*(?=,|$)")


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """The challenges of a ``WWW-Authenticate`` value: each scheme (lower-cased) and its
    parameters (names lower-cased, quoted values unquoted), in order (RFC 9110 11.6.1).

    One header may hold several challenges, and a quoted value may hold commas and
    ``=``; a part that does not parse ends the list quietly.

    Examples:
        >>> parse_challenges('Basic realm="a, b", Bearer error="invalid_token"')
        [('basic', {'realm': 'a, b'}), ('bearer', {'error': 'invalid_token'})]
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    position = 0
    while (scheme := _CHALLENGE_SCHEME.match(value, position)) is not None:
        position = scheme.end()
        params: dict[str, str] = {}
        if (token68 := _TOKEN68.match(value, position)) is not None:
            position = token68.end()  # Negotiate abc==: no parameters to read
        while (param := _AUTH_PARAM.match(value, position)) is not None:
            position = param.end()
            raw = param.group(2)
            if raw.startswith('"'):
                raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
            params.setdefault(param.group(1).lower(), raw)
        challenges.append((scheme.group(1).lower(), params))
    if value[position:].strip(" \t,"):
        logger.debug("ignoring malformed WWW-Authenticate part %r", value[position:][:100])
    return challenges
