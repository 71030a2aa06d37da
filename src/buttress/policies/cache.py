"""RFC 9111 age and freshness for a private cache, with the time passed in (no I/O).

hishel's state machine decides what may be stored and how a 304 refreshes a
stored response; these functions decide whether a stored response may be used
*now*. hishel reads the wall clock itself and ignores the ``Age`` a response
arrives with and the request's own directives, so buttress computes the age the
way RFC 9111 section 4.2.3 asks and applies ``max-age``, ``max-stale``,
``min-fresh`` and ``no-cache`` from the request here. What a stored response's
headers say is read once, when it is stored (:class:`StoredHeaders`), not on every hit.

Examples:
    >>> from hishel import Headers
    >>> headers = Headers({"cache-control": "max-age=60", "age": "10"})
    >>> initial = initial_age(headers, request_time=100.0, response_time=101.0)
    >>> initial
    11.0
    >>> freshness_lifetime(headers, response_time=101.0, default_ttl=None)
    60.0
    >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now=0.0)
    784111777.0
    >>> current_age(initial, response_time=101.0, now=131.0)
    41.0
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from hishel import Entry, Headers, Request, Response

__all__ = [
    "INITIAL_AGE",
    "INTERNAL_HEADERS",
    "RESPONSE_TIME",
    "USEFUL_UNTIL",
    "CacheControl",
    "Lines",
    "Lookup",
    "RequestDirectives",
    "StoredFacts",
    "StoredHeaders",
    "cache_control",
    "conditional_request",
    "current_age",
    "freshness_lifetime",
    "initial_age",
    "lookup",
    "parse_http_date",
    "served_lines",
    "stale_if_error_allows",
    "stored_facts",
    "useful_until",
    "varies_by_everything",
    "vary_matches",
    "vary_names",
]

RESPONSE_TIME = "buttress-response-time"
"""Internal header on a stored response: when it arrived (epoch seconds)."""
INITIAL_AGE = "buttress-initial-age"
"""Internal header on a stored response: its corrected initial age (RFC 9111 4.2.3)."""
USEFUL_UNTIL = "buttress-useful-until"
"""Internal header on a stored response: when it stops being fresh or servable stale (epoch
seconds). Backends with a server-side expiry (Redis, Memcached) derive it from this."""
INTERNAL_HEADERS = frozenset({RESPONSE_TIME, INITIAL_AGE, USEFUL_UNTIL})
"""The headers only the cache layer writes; a response from storage does not carry them."""

_HEURISTIC_CAP = 86_400.0
_HEURISTIC_FRACTION = 0.1

_HEURISTICALLY_CACHEABLE = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
"""Statuses that may get heuristic freshness (RFC 9110 15.1)."""


_LONGEST_CACHE_CONTROL = 8192
"""Longer ``Cache-Control`` values are broken or hostile (h11 takes 16 KiB of headers in all)."""


_DELTA_SECONDS_CAP = 2_147_483_648
"""RFC 9111 1.2.2: a delta-seconds too large to hold is read as 2**31."""

_DIRECTIVE = re.compile(r"""([^\s,=]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?""")
"""``name`` or ``name=token`` or ``name="quoted string"`` (RFC 9111 5.2), split at commas."""


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The directives of a ``Cache-Control`` value that a private cache acts on (RFC 9111 5.2).

    Number-valued directives are ``None`` when absent or not a non-negative integer;
    ``no_cache`` is ``True`` for a bare ``no-cache`` and the field names for
    ``no-cache="Set-Cookie"`` (which still allows serving the rest of the response).
    When a directive appears twice, the last one counts.

    Examples:
        >>> cc = cache_control('max-age=60, no-cache="Set-Cookie", stale-if-error=300')
        >>> cc.max_age, cc.no_cache, cc.stale_if_error
        (60, ('set-cookie',), 300)
    """

    max_age: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    no_cache: bool | tuple[str, ...] = False
    no_store: bool = False
    only_if_cached: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    public: bool = False


_NUMBERS = {
    "max-age": "max_age",
    "max-stale": "max_stale",
    "min-fresh": "min_fresh",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
}
_FLAGS = {
    "no-cache": "no_cache",
    "no-store": "no_store",
    "only-if-cached": "only_if_cached",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "public": "public",
}


def _delta_seconds(argument: str) -> int | None:
    return (
        min(int(argument), _DELTA_SECONDS_CAP)
        if argument.isascii() and argument.isdigit()
        else None
    )


@lru_cache(maxsize=1024)
def cache_control(value: str | None) -> CacheControl:
    """Parse a ``Cache-Control`` value once per distinct value (a hit must be cheap).

    Unknown directives and malformed arguments are ignored. A value too long to
    be genuine is not parsed and reads as ``no-store``: nothing is cached on its say-so.

    Examples:
        >>> cache_control("max-age=60").max_age
        60
        >>> cache_control("max-stale").max_stale
        2147483648
        >>> cache_control("max-age=60," * 2000).no_store
        True
    """
    if not value:
        return _NO_CACHE_CONTROL
    if len(value) > _LONGEST_CACHE_CONTROL:
        return CacheControl(no_store=True)
    found: dict[str, int | bool | tuple[str, ...] | None] = {}
    for match in _DIRECTIVE.finditer(value):
        name, argument = match[1].lower(), match[2]
        if argument is not None:
            argument = argument.strip()
            if argument.startswith('"'):
                argument = re.sub(r"\\(.)", r"\1", argument[1:-1])
        if name in _NUMBERS:
            if argument is not None:
                found[_NUMBERS[name]] = _delta_seconds(argument)
            elif name == "max-stale":  # bare: any staleness is acceptable
                found["max_stale"] = _DELTA_SECONDS_CAP
        elif name == "no-cache" and argument:
            fields = tuple(field.strip().lower() for field in argument.split(","))
            found["no_cache"] = tuple(field for field in fields if field) or True
        elif name in _FLAGS:
            found[_FLAGS[name]] = True
    return CacheControl(**found)  # type: ignore[arg-type]


_NO_CACHE_CONTROL = CacheControl()


def conditional_request(request: Request, stored: Response) -> Request:
    """``request`` with the validators of the ``stored`` response (RFC 9111 4.3.1).

    ``If-None-Match`` carries its ``ETag`` and ``If-Modified-Since`` its ``Last-Modified``.

    Examples:
        >>> stored = Response(200, Headers({"etag": '"v1"'}))
        >>> conditional_request(Request("GET", "/"), stored).headers["if-none-match"]
        '"v1"'
    """
    headers: dict[str, str | list[str]] = {
        name: request.headers.get_list(name) or [] for name in request.headers
    }
    for precondition, validator in _VALIDATORS:
        value = _first(stored.headers, validator)
        if value:
            headers[precondition] = value
    return replace(request, headers=Headers(headers))


_VALIDATORS = (("if-none-match", "etag"), ("if-modified-since", "last-modified"))


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_MONTH = f"(?P<month>{'|'.join(_MONTH_NAMES)})"
_TIME = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_HTTP_DATES = (  # RFC 9110 5.6.7; case-sensitive, single spaces, nothing around
    re.compile(  # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) "
        rf"{_TIME} GMT"
    ),
    re.compile(  # obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
        rf"(?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"
    ),
    re.compile(  # obsolete asctime: Sun Nov  6 08:49:37 1994
        rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} "
        r"(?P<year>[0-9]{4})"
    ),
)


@lru_cache(maxsize=1024)
def _date_fields(value: str) -> tuple[int, int, int, int, int, int, bool] | None:
    """Year, month, day, hour, minute, second and "the year has two digits", or ``None``."""
    for pattern in _HTTP_DATES:
        match = pattern.fullmatch(value)
        if match is not None:
            year = match["year"]
            return (
                int(year),
                _MONTHS[match["month"]],
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"]),
                len(year) == 2,
            )
    return None


def parse_http_date(value: str, *, now: float) -> float | None:
    """An HTTP-date (RFC 9110 5.6.7) as epoch seconds, or ``None`` when it is not one.

    Only the three formats a recipient must accept are dates: IMF-fixdate and
    the obsolete RFC 850 and asctime formats, exactly as written there (so
    ``UTC`` or ``+0000`` zones, a missing comma, extra spaces or a one-digit
    hour are not). An RFC 850 two-digit year more than 50 years after ``now``
    is taken from the previous century.

    Examples:
        >>> parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now=1_700_000_000.0)
        784111777.0
        >>> parse_http_date("Sun Nov  6 08:49:37 1994", now=0.0)
        784111777.0
        >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC", now=0.0) is None
        True
    """
    fields = _date_fields(value)
    if fields is None:
        return None
    year, month, day, hour, minute, second, two_digit_year = fields
    if two_digit_year:
        this_year = time.gmtime(now).tm_year
        year += this_year - this_year % 100
        if year > this_year + 50:
            year -= 100
    if year < 1 or hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def _header_date(headers: Headers, name: str, now: float) -> float | None:
    """A date header's value; several field lines, like an invalid date, give ``None``."""
    values = headers.get_list(name)
    if not values or len(values) > 1:
        return None
    return parse_http_date(values[0], now=now)


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
        if not any(values):  # the usual request: no directives, nothing to join or parse
            return _NO_DIRECTIVES
        cc = cache_control(", ".join([v for v in values if v]))
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
    date = _header_date(headers, "date", response_time)
    apparent_age = max(0.0, response_time - date) if date is not None else 0.0
    corrected_age_value = _age_value(headers.get("age")) + max(0.0, response_time - request_time)
    return max(apparent_age, corrected_age_value)


def current_age(initial: float, *, response_time: float, now: float) -> float:
    """How old a stored response is at ``now``."""
    return initial + max(0.0, now - response_time)


def freshness_lifetime(
    headers: Headers,
    *,
    response_time: float,
    default_ttl: float | None,
    status_code: int = 200,
) -> float | None:
    """Seconds a response stays fresh in a private cache, or ``None`` when it never is.

    ``max-age`` wins (``s-maxage`` is for shared caches only), then ``Expires``
    minus ``Date`` (RFC 9111 4.2.1; an ``Expires`` that is not one valid
    HTTP-date means already expired, 5.3). Without either, a heuristically
    cacheable status (or a ``public`` response) gets ``default_ttl`` when one is
    configured, otherwise the heuristic of RFC 9111 4.2.2: 10% of the time since
    ``Last-Modified``, at most a day.
    """
    cc_value = _value(headers, "cache-control")
    explicit, heuristic = _lifetimes(headers, cc_value, response_time)
    return _lifetime(explicit, heuristic, cache_control(cc_value), status_code, default_ttl)


def _lifetimes(
    headers: Headers, cc_value: str | None, response_time: float
) -> tuple[float | None, float | None]:
    """The lifetimes the headers give, whatever the configuration: explicit and heuristic.

    The explicit one comes from ``max-age`` or ``Expires`` (``None``: neither); the
    heuristic one, read only without it, from ``Last-Modified`` (``None``: none).
    """
    max_age = _max_age(cc_value)
    if max_age is not None:
        return max_age, None
    if headers.get_list("expires") is not None:
        expires = _header_date(headers, "expires", response_time)
        if expires is None:
            return 0.0, None
        return expires - _date_or(headers, response_time), None
    modified = _header_date(headers, "last-modified", response_time)
    if modified is None:
        return None, None
    age = _date_or(headers, response_time) - modified
    return None, min(_HEURISTIC_CAP, max(0.0, age * _HEURISTIC_FRACTION))


def _date_or(headers: Headers, response_time: float) -> float:
    """The response's ``Date``, or when it arrived if it has no valid one."""
    date = _header_date(headers, "date", response_time)
    return date if date is not None else response_time


def _lifetime(
    explicit: float | None,
    heuristic: float | None,
    cc: CacheControl,
    status_code: int,
    default_ttl: float | None,
) -> float | None:
    """:func:`freshness_lifetime`, from what :func:`_lifetimes` read."""
    if explicit is not None:
        return explicit
    if status_code not in _HEURISTICALLY_CACHEABLE and not cc.public:
        return None
    return default_ttl if default_ttl is not None else heuristic


def _first(headers: Headers, name: str) -> str | None:
    """A header's first value (a hit must be cheap: no joining of field lines)."""
    values = headers.get_list(name)
    return values[0] if values else None


def _value(headers: Headers, name: str) -> str | None:
    """A header's field lines joined, as ``headers.get`` joins them (without its KeyError)."""
    values = headers.get_list(name)
    return ", ".join(values) if values is not None else None


def vary_names(headers: Headers) -> frozenset[str]:
    """The names a response's ``Vary`` lists, lower-cased (``*`` among them, if listed).

    Stored headers (:class:`StoredHeaders`) answer from what was read when they were stored.

    Examples:
        >>> sorted(vary_names(Headers({"vary": ["Accept, X-Team", "*"]})))
        ['*', 'accept', 'x-team']
    """
    return headers.facts.vary if type(headers) is StoredHeaders else _vary(headers)


def _vary(headers: Headers) -> frozenset[str]:
    """:func:`vary_names`, read from the headers themselves."""
    values = headers.get_list("vary")
    if not values:
        return _NOTHING
    return frozenset(name.strip().lower() for value in values for name in value.split(",")) - {""}


_NOTHING: frozenset[str] = frozenset()


class StoredFacts(NamedTuple):
    """What every use of a stored response reads from its headers, read in one go.

    The headers the cache layer stores carry them (:class:`StoredHeaders`): a backend
    that keeps that object (:class:`~buttress.cache.MemoryCache`, a memory tier) hands
    it back on every hit, which then reads nothing again. Other headers (a disk
    entry's, those stored by other code) are read on each use.

    Attributes:
        response_time: when it arrived (:data:`RESPONSE_TIME`; 0 without it).
        initial_age: its corrected initial age (:data:`INITIAL_AGE`; 0 without it).
        cache_control: its ``Cache-Control``.
        explicit_lifetime: the freshness ``max-age`` or ``Expires`` gives it; ``None``
            when it has neither (then the configuration decides).
        heuristic_lifetime: without it, the freshness its ``Last-Modified`` suggests.
        vary: the request headers its ``Vary`` names, lower-cased, ``*`` included.
    """

    response_time: float
    initial_age: float
    cache_control: CacheControl
    explicit_lifetime: float | None
    heuristic_lifetime: float | None
    vary: frozenset[str]

    @classmethod
    def read(cls, headers: Headers) -> StoredFacts:
        response_time = _seconds(_first(headers, RESPONSE_TIME)) or 0.0
        cc_value = _value(headers, "cache-control")
        return cls(
            response_time,
            _seconds(_first(headers, INITIAL_AGE)) or 0.0,
            cache_control(cc_value),
            *_lifetimes(headers, cc_value, response_time),
            _vary(headers),
        )

    def age(self, now: float) -> float:
        """How old the response is at ``now``."""
        return current_age(self.initial_age, response_time=self.response_time, now=now)

    def lifetime(self, status_code: int, default_ttl: float | None) -> float | None:
        """Its :func:`freshness_lifetime` (``status_code`` is the stored response's)."""
        return _lifetime(
            self.explicit_lifetime,
            self.heuristic_lifetime,
            self.cache_control,
            status_code,
            default_ttl,
        )


Lines = tuple[tuple[bytes, bytes], ...]
"""Header field lines as bytes, in order."""


class StoredHeaders(Headers):
    """A response's headers as the cache layer stores them, read once.

    They carry what every hit needs from them: :class:`StoredFacts` and the
    :func:`served_lines`. Changing them reads them again; the lists ``get_list``
    returns are not to be changed.

    Examples:
        >>> headers = StoredHeaders({"cache-control": "max-age=60", RESPONSE_TIME: "100.0"})
        >>> stored_facts(headers).explicit_lifetime, served_lines(headers)
        (60.0, ((b'cache-control', b'max-age=60'),))
    """

    def __init__(self, headers: Mapping[str, str | list[str]]) -> None:
        super().__init__(headers)
        self._read()

    @classmethod
    def of(cls, headers: Headers) -> StoredHeaders:
        """``headers`` (every field line of them) in the stored form."""
        return cls({name: headers.get_list(name) or [] for name in headers})

    def _read(self) -> None:
        self.facts = StoredFacts.read(self)
        self.lines = _served_lines(self)

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self._read()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._read()


def stored_facts(headers: Headers) -> StoredFacts:
    """What a stored response's ``headers`` say (read when stored, if they were stored here)."""
    # The exact type: isinstance against a Mapping subclass asks the ABC machinery.
    return headers.facts if type(headers) is StoredHeaders else StoredFacts.read(headers)


def served_lines(headers: Headers) -> Lines:
    """A stored response's field lines as a response from storage carries them.

    That is without the layer's internal headers and the ``Age`` it arrived with (a
    response from storage states its own), encoded as Latin-1 (``?`` for what is not).
    """
    return headers.lines if type(headers) is StoredHeaders else _served_lines(headers)


def _served_lines(headers: Headers) -> Lines:
    return tuple(
        (name.encode(), value.encode("latin-1", "replace"))
        for name in headers
        if name not in INTERNAL_HEADERS and name != "age"
        for value in headers.get_list(name) or ()
    )


def age_of(entry: Entry, now: float) -> float:
    """The current age of a stored entry."""
    return stored_facts(entry.response.headers).age(now)


def _never_stale(cc: CacheControl) -> bool:
    """``must-revalidate``, ``proxy-revalidate`` and ``no-cache`` forbid serving it stale.

    ``proxy-revalidate`` binds only shared caches (RFC 9111 5.2.2.8); a private
    cache honours it too, since the origin asked for validation.
    """
    return cc.must_revalidate or cc.proxy_revalidate or cc.no_cache is True


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
    return _matches(request, entry, vary_names(entry.response.headers))


def _matches(request: Request, entry: Entry, vary: frozenset[str]) -> bool:
    """:func:`vary_matches`, given the names ``entry``'s ``Vary`` lists."""
    if not vary:
        return True
    if "*" in vary:
        return False
    stored = entry.request.headers
    return all(
        _normalized(request.headers.get_list(name)) == _normalized(stored.get_list(name))
        for name in vary
    )


def varies_by_everything(headers: Headers) -> bool:
    """Does a response say ``Vary: *``, so that no later request can match it (RFC 9111 4.1)?

    Such a response is not worth storing: it could never answer.

    Examples:
        >>> varies_by_everything(Headers({"vary": ["Accept", "Origin, *"]}))
        True
        >>> varies_by_everything(Headers({"vary": "Accept"}))
        False
    """
    return any(
        name.strip() == "*" for value in headers.get_list("vary") or () for name in value.split(",")
    )


class Lookup(NamedTuple):
    """What the stored entries offer a request.

    ``usable`` may answer without contacting the origin (its ``age`` given);
    ``candidates`` are the stored variants to revalidate, newest first. When
    ``revalidate_in_background`` is set, ``usable`` is stale but within its
    ``stale-while-revalidate`` window (RFC 5861): answer with it and revalidate
    ``candidates`` meanwhile.
    """

    usable: Entry | None
    age: float
    candidates: list[Entry]
    revalidate_in_background: bool = False


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
    if _never_stale(cc) or directives.max_stale is None:
        return False
    return -remaining <= directives.max_stale


def _while_revalidating(
    cc: CacheControl, age: float, lifetime: float | None, directives: RequestDirectives
) -> bool:
    """May a stale response answer while it is revalidated (``stale-while-revalidate``)?"""
    if cc.stale_while_revalidate is None or _never_stale(cc):
        return False
    # Revalidating contacts the origin, which an only-if-cached request forbids (RFC 9111
    # 5.2.1.7): for it a stale response needs max-stale, as anywhere else.
    if directives.no_cache or directives.min_fresh is not None or directives.only_if_cached:
        return False
    if directives.max_age is not None and age > directives.max_age:
        return False
    return age - (lifetime if lifetime is not None else 0.0) <= cc.stale_while_revalidate


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
    method, url = request.method, request.url
    matching: list[tuple[Entry, StoredFacts]] = []
    for entry in entries:
        stored = entry.request
        if stored.url != url or not (
            stored.method == method or (method == "HEAD" and stored.method == "GET")
        ):
            continue
        facts = stored_facts(entry.response.headers)
        if _matches(request, entry, facts.vary):
            matching.append((entry, facts))
    if len(matching) > 1:
        matching.sort(key=lambda found: found[1].response_time, reverse=True)
    stale: tuple[Entry, float] | None = None
    for entry, facts in matching:
        age = facts.age(now)
        lifetime = facts.lifetime(entry.response.status_code, default_ttl)
        if _usable(facts.cache_control, age, lifetime, directives):
            return Lookup(entry, age, [])
        if stale is None and _while_revalidating(facts.cache_control, age, lifetime, directives):
            stale = (entry, age)
    candidates = [entry for entry, _ in matching if entry.request.method == method]
    if stale is not None and candidates:
        return Lookup(stale[0], stale[1], candidates, revalidate_in_background=True)
    return Lookup(None, 0.0, candidates)


def useful_until(
    headers: Headers,
    status_code: int,
    *,
    default_ttl: float | None,
    stale_if_error: float | None,
) -> float:
    """When a stored response can no longer answer without its origin (epoch seconds).

    That is when it stops being fresh, plus the longest of its own
    ``stale-while-revalidate`` and ``stale-if-error`` and the configured
    ``stale_if_error`` window, unless it may never be served stale.

    Examples:
        >>> stamps = {RESPONSE_TIME: "1000.0", INITIAL_AGE: "10"}
        >>> headers = Headers({**stamps, "cache-control": "max-age=60"})
        >>> useful_until(headers, 200, default_ttl=None, stale_if_error=30)
        1080.0
    """
    facts = stored_facts(headers)
    lifetime = facts.lifetime(status_code, default_ttl)
    fresh_until = facts.response_time - facts.initial_age + (lifetime or 0.0)
    cc = facts.cache_control
    if _never_stale(cc):
        return fresh_until
    windows = (cc.stale_while_revalidate or 0, cc.stale_if_error or 0, stale_if_error or 0.0)
    return fresh_until + max(windows)


def stale_if_error_allows(
    entry: Entry, *, now: float, default_ttl: float | None, window: float | None
) -> bool:
    """May ``entry`` answer for a failing origin (RFC 5861 ``stale-if-error``)?

    The window is the larger of the configured one and the response's own
    ``stale-if-error``; ``must-revalidate``, ``proxy-revalidate`` and
    ``no-cache`` forbid it.
    """
    facts = stored_facts(entry.response.headers)
    cc = facts.cache_control
    if _never_stale(cc):
        return False
    allowed = max(window or 0.0, float(cc.stale_if_error or 0))
    if allowed <= 0:
        return False
    lifetime = facts.lifetime(entry.response.status_code, default_ttl) or 0.0
    return facts.age(now) - lifetime <= allowed
