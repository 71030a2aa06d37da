"""RFC 9111 age and freshness for a private cache, with the time passed in (no I/O).

hishel's state machine decides what may be stored and how a 304 refreshes a
stored response; these functions decide whether a stored response may be used
*now*. hishel reads the wall clock itself and ignores the ``Age`` a response
arrives with and the request's own directives, so buttress computes the age the
way RFC 9111 section 4.2.3 asks and applies ``max-age``, ``max-stale``,
``min-fresh`` and ``no-cache`` from the request here.

Examples:
    >>> from hishel import Headers
    >>> headers = Headers({"cache-control": "max-age=60", "age": "10"})
    >>> initial = initial_age(headers, request_time=100.0, response_time=101.0)
    >>> initial
    11.0
    >>> freshness_lifetime(headers, response_time=101.0, default_ttl=None)
    60.0
    >>> current_age(initial, response_time=101.0, now=131.0)
    41.0
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hishel import Entry, Headers, Request
from hishel._core._headers import CacheControl, parse_cache_control
from hishel._utils import parse_date

__all__ = [
    "INITIAL_AGE",
    "RESPONSE_TIME",
    "Lookup",
    "RequestDirectives",
    "cache_control",
    "current_age",
    "freshness_lifetime",
    "initial_age",
    "lookup",
    "stale_if_error_allows",
    "vary_matches",
]

RESPONSE_TIME = "buttress-response-time"
"""Internal header on a stored response: when it arrived (epoch seconds)."""
INITIAL_AGE = "buttress-initial-age"
"""Internal header on a stored response: its corrected initial age (RFC 9111 4.2.3)."""

_HEURISTIC_CAP = 86_400.0


_LONGEST_CACHE_CONTROL = 8192
"""Longer ``Cache-Control`` values are broken or hostile (h11 takes 16 KiB of headers in all)."""


@lru_cache(maxsize=1024)
def cache_control(value: str | None) -> CacheControl:
    """Parse a ``Cache-Control`` value once per distinct value (a hit must be cheap).

    A value too long to be genuine is not parsed (hishel's parser goes character
    by character) and reads as ``no-store``: nothing is cached on its say-so.

    Examples:
        >>> cache_control("max-age=60").max_age
        60
        >>> cache_control("max-age=60," * 2000).no_store
        True
    """
    if value is not None and len(value) > _LONGEST_CACHE_CONTROL:
        value = "no-store"
    return parse_cache_control(value)


@lru_cache(maxsize=1024)
def _date(value: str) -> int | None:
    return parse_date(value)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _age_value(value: str | None) -> float:
    """The ``Age`` header: its first member if a list, ignored when not a non-negative integer."""
    if not value:
        return 0.0
    first = value.split(",", 1)[0].strip()
    return float(first) if first.isdigit() else 0.0


@lru_cache(maxsize=1024)
def _max_age(value: str | None) -> float | None:
    """The response's ``max-age``: the first occurrence wins, an invalid value means stale.

    RFC 9111 4.2.1 allows using the first of duplicated directives; hishel's
    parser keeps the last one and drops invalid values (which would let
    ``Expires`` or ``default_ttl`` apply instead).
    """
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            return float(min(int(argument), 2_147_483_648)) if argument.isdigit() else 0.0
    return None


@dataclass(frozen=True, slots=True)
class RequestDirectives:
    """The request's cache directives (RFC 9111 5.2.1), from its header and the per-call option.

    Examples:
        >>> RequestDirectives.parse("max-age=5", "only-if-cached").only_if_cached
        True
    """

    no_cache: bool = False
    no_store: bool = False
    only_if_cached: bool = False
    max_age: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None

    @classmethod
    def parse(cls, *values: str | None) -> RequestDirectives:
        """Combine every ``Cache-Control`` value given (``None`` entries are skipped)."""
        present = [v for v in values if v]
        if not present:
            return _NO_DIRECTIVES
        cc = cache_control(", ".join(present))
        return cls(
            no_cache=bool(cc.no_cache),
            no_store=cc.no_store,
            only_if_cached=cc.only_if_cached,
            max_age=cc.max_age,
            max_stale=cc.max_stale,
            min_fresh=cc.min_fresh,
        )


_NO_DIRECTIVES = RequestDirectives()


def initial_age(headers: Headers, *, request_time: float, response_time: float) -> float:
    """The corrected initial age of a response received at ``response_time`` (RFC 9111 4.2.3)."""
    date = _date(headers.get("date", ""))
    apparent_age = max(0.0, response_time - date) if date is not None else 0.0
    corrected_age_value = _age_value(headers.get("age")) + max(0.0, response_time - request_time)
    return max(apparent_age, corrected_age_value)


def current_age(initial: float, *, response_time: float, now: float) -> float:
    """How old a stored response is at ``now``."""
    return initial + max(0.0, now - response_time)


def freshness_lifetime(
    headers: Headers, *, response_time: float, default_ttl: float | None
) -> float | None:
    """Seconds a response stays fresh in a private cache, or ``None`` when it never is.

    ``max-age`` wins (``s-maxage`` is for shared caches only), then ``Expires``
    minus ``Date`` (an invalid ``Expires`` means already expired). With neither,
    ``default_ttl`` stands in for RFC 9111's heuristic freshness; when it is
    ``None`` the heuristic itself applies (10% of the time since ``Last-Modified``).
    """
    max_age = _max_age(headers.get("cache-control"))
    if max_age is not None:
        return max_age
    if "expires" in headers:
        expires = _date(headers["expires"])
        if expires is None:
            return 0.0
        date = _date(headers.get("date", ""))
        return float(expires - (date if date is not None else response_time))
    if default_ttl is not None:
        return default_ttl
    modified = _date(headers.get("last-modified", ""))
    date = _date(headers.get("date", ""))
    if modified is None:
        return None
    reference = date if date is not None else response_time
    return min(_HEURISTIC_CAP, max(0.0, (reference - modified) * 0.1))


def _first(headers: Headers, name: str) -> str | None:
    """A header's first value; a plain dictionary lookup, since a hit must be cheap."""
    values = headers._headers.get(name)
    return values[0] if values else None


def _times(headers: Headers) -> tuple[float, float]:
    response_time = _seconds(_first(headers, RESPONSE_TIME)) or 0.0
    return response_time, _seconds(_first(headers, INITIAL_AGE)) or 0.0


def age_of(entry: Entry, now: float) -> float:
    """The current age of a stored entry."""
    response_time, initial = _times(entry.response.headers)
    return current_age(initial, response_time=response_time, now=now)


def _lifetime_of(entry: Entry, default_ttl: float | None) -> float | None:
    response_time, _ = _times(entry.response.headers)
    return freshness_lifetime(
        entry.response.headers, response_time=response_time, default_ttl=default_ttl
    )


def _normalized(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",")]


def vary_matches(request: Request, entry: Entry) -> bool:
    """Do the headers ``entry``'s ``Vary`` names match between its request and ``request``?

    RFC 9111 4.1: values match after removing whitespace and combining field
    lines; ``Vary: *`` never matches. (hishel compares the raw strings.)

    Examples:
        >>> import uuid
        >>> from hishel import Response
        >>> stored = Entry(
        ...     uuid.uuid4(),
        ...     Request("GET", "/", Headers({"accept": "a,b"})),
        ...     Response(200, Headers({"vary": "Accept"})),
        ... )
        >>> vary_matches(Request("GET", "/", Headers({"accept": ["a", " b"]})), stored)
        True
    """
    vary = entry.response.headers._headers.get("vary")
    if not vary:
        return True
    for name in ",".join(vary).split(","):
        name = name.strip().lower()
        if name == "*":
            return False
        if name and _normalized(request.headers.get_list(name)) != _normalized(
            entry.request.headers.get_list(name)
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the stored entries offer a request.

    ``usable`` may answer without contacting the origin (its ``age`` given);
    ``candidates`` are the stored variants to revalidate, newest first.
    """

    usable: Entry | None
    age: float
    candidates: list[Entry]


def _usable(
    cc: CacheControl,
    age: float,
    lifetime: float | None,
    directives: RequestDirectives,
) -> bool:
    if cc.no_cache is True or directives.no_cache:
        return False
    if directives.max_age is not None and age > directives.max_age:
        return False
    remaining = (lifetime if lifetime is not None else 0.0) - age
    if remaining > 0:  # fresh
        return directives.min_fresh is None or remaining >= directives.min_fresh
    if cc.must_revalidate or directives.max_stale is None:
        return False
    return -remaining <= directives.max_stale


def lookup(
    request: Request,
    entries: list[Entry],
    directives: RequestDirectives,
    *,
    now: float,
    default_ttl: float | None,
) -> Lookup:
    """Pick the stored response that may answer ``request`` at ``now``, if any.

    Only entries for the same URL whose ``Vary`` headers match are considered,
    stored for the same method (or for ``GET``, when answering ``HEAD``); among
    them the newest is preferred. Only same-method entries are revalidated.
    """
    method = request.method
    matching = [
        entry
        for entry in entries
        if (entry.request.method == method or (method == "HEAD" and entry.request.method == "GET"))
        and entry.request.url == request.url
        and vary_matches(request, entry)
    ]
    if len(matching) > 1:
        matching.sort(key=lambda entry: _times(entry.response.headers)[0], reverse=True)
    for entry in matching:
        headers = entry.response.headers
        response_time, initial = _times(headers)
        age = current_age(initial, response_time=response_time, now=now)
        lifetime = freshness_lifetime(headers, response_time=response_time, default_ttl=default_ttl)
        if _usable(cache_control(headers.get("cache-control")), age, lifetime, directives):
            return Lookup(entry, age, [])
    return Lookup(None, 0.0, [entry for entry in matching if entry.request.method == method])


def stale_if_error_allows(
    entry: Entry, *, now: float, default_ttl: float | None, window: float | None
) -> bool:
    """May ``entry`` answer for a failing origin (RFC 5861 ``stale-if-error``)?

    The window is the larger of the configured one and the response's own
    ``stale-if-error``; ``must-revalidate`` and ``no-cache`` forbid it.
    """
    cc = cache_control(entry.response.headers.get("cache-control"))
    if cc.must_revalidate or cc.no_cache is True:
        return False
    allowed = max(window or 0.0, float(cc.stale_if_error or 0))
    if allowed <= 0:
        return False
    lifetime = _lifetime_of(entry, default_ttl) or 0.0
    return age_of(entry, now) - lifetime <= allowed
