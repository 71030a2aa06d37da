"""Per-request options, carried in ``request.extensions["buttress"]``.

The facade fills a :class:`RequestOptions` from a call's keyword arguments;
every layer reads only its own field. Plain httpx users pass the same thing
with ``extensions=buttress.options(...)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ._exceptions import ConfigurationError
from ._extensions import EXTENSION_KEY
from .policies.priority import ALLOWED as _PRIORITIES
from .policies.priority import Priority
from .policies.priority import valid as _priority

if TYPE_CHECKING:
    from .policies.retry import RetryConfig

__all__ = [
    "RequestOptions",
    "check_options",
    "options",
]


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a single request may override.

    Attributes:
        total_timeout: seconds for the whole logical request (all attempts).
        streamed: the caller reads the body itself (``client.stream``); layers
            must not read it for them.
        raise_for_status: the facade raises for 4xx/5xx (``None``: the client's setting).
        expected_statuses: error statuses the facade returns instead of raising.
        retry: ``False`` sends this request once, a ``RetryConfig`` replaces the
            retry layer's configuration, ``None`` / ``True`` keep it.
        rate_limit: when the client-side rate limit has no slot free for this
            request: ``"wait"``, ``"raise"`` or ``"return"`` (``None``: the
            limiter's ``on_limit``).
        middleware: middleware for this request only; runs inside the client's.
        cache_control: request cache directives for the cache layer only, such as
            ``"no-cache"``, ``"no-store"``, ``"only-if-cached"``, ``"max-age=60"``,
            ``"max-stale=30"`` or ``"min-fresh=10"`` (RFC 9111 5.2.1); not sent.
        proxy: a proxy URL for this request only, or ``False`` to go direct
            (``None``: the client's routing). Read by the network transport; left
            out of the repr, as it may hold a password.
        max_response_size: bytes of body the facade accepts (``None``: the client's
            setting, which does not apply to ``client.stream()``).
        idempotent: ``True`` declares the request safe to send twice whatever its
            method (a GraphQL query or a search sent as POST), so the retry layer
            retries it as it retries a GET. ``False``: the method decides.
        priority: where requests wait (the rate limiter's queue, the pool gate),
            who goes first: ``"high"``, ``"normal"`` or ``"low"`` (levels 1, 0
            and -1), or an int from -10 to 10; higher goes first, first come,
            first served within a level, and a waiting request gains a level
            every 10 seconds (``None``: ``"normal"``).

    Examples:
        >>> opts = RequestOptions(total_timeout=5.0)
        >>> opts.total_timeout
        5.0
    """

    total_timeout: float | None = None
    streamed: bool = False
    raise_for_status: bool | None = None
    expected_statuses: frozenset[int] | None = None
    retry: RetryConfig | bool | None = None
    rate_limit: Literal["wait", "raise", "return"] | None = None
    middleware: tuple[Any, ...] = ()
    cache_control: str | None = None
    proxy: str | httpx.URL | Literal[False] | None = field(default=None, repr=False)
    max_response_size: int | None = None
    idempotent: bool = False
    priority: Priority | None = None

    @staticmethod
    def of(request: httpx.Request) -> RequestOptions:
        """The options travelling with ``request`` (defaults when it has none)."""
        found = request.extensions.get(EXTENSION_KEY)
        return found if isinstance(found, RequestOptions) else DEFAULT_OPTIONS

    def merged(self, **changes: Any) -> RequestOptions:
        """A copy with ``changes`` applied (``None`` values leave a field as is)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **changes) if changes else self


DEFAULT_OPTIONS = RequestOptions()
_FIELDS = frozenset(f.name for f in fields(RequestOptions))


def _count(value: Any, least: int, *, integer: bool = True) -> bool:
    kinds = int if integer else int | float
    return isinstance(value, kinds) and not isinstance(value, bool) and value >= least


def _retry(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    # A RetryConfig's module is loaded once one exists; the policy above is not imported here.
    retry = sys.modules.get("buttress.policies.retry")
    return retry is not None and isinstance(value, retry.RetryConfig)


def _statuses(value: Any) -> bool:
    return (
        isinstance(value, Collection)
        and not isinstance(value, str | bytes | Mapping)
        and all(_count(code, 100) and code <= 599 for code in value)
    )


# What each option accepts besides None, and how to say it.
_ACCEPTS: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "total_timeout": (
        lambda value: _count(value, 0, integer=False) and value > 0,
        "seconds (a number > 0) or None",
    ),
    "streamed": (lambda value: isinstance(value, bool), "True or False"),
    "raise_for_status": (lambda value: isinstance(value, bool), "True, False or None"),
    "expected_statuses": (_statuses, "a collection of status codes (ints 100-599) or None"),
    "retry": (_retry, "a RetryConfig, True, False or None"),
    "rate_limit": (
        lambda value: value in ("wait", "raise", "return"),
        "'wait', 'raise', 'return' or None",
    ),
    "middleware": (lambda value: isinstance(value, list | tuple), "a list of middleware"),
    "cache_control": (lambda value: isinstance(value, str), "request cache directives or None"),
    "proxy": (
        lambda value: value is False or isinstance(value, str | httpx.URL),
        "a proxy URL, False or None",
    ),
    "max_response_size": (
        lambda value: _count(value, 0),
        "a size in bytes (an int >= 0) or None",
    ),
    "idempotent": (lambda value: isinstance(value, bool), "True, False or None"),
    "priority": (_priority, f"{_PRIORITIES} or None"),
}


def check_options(values: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for a per-request option of the wrong kind.

    The message names the option, what it takes and what it got (a number by
    its value, anything else by its type: a string may be a proxy's password).

    Examples:
        >>> try:
        ...     check_options({"retry": "no"})
        ... except ConfigurationError as e:
        ...     print(e)
        request option retry=... takes a RetryConfig, True, False or None, not str
    """
    for name, value in values.items():
        accepts, expected = _ACCEPTS[name]
        if value is not None and not accepts(value):
            got = repr(value) if isinstance(value, int | float) else type(value).__name__
            raise ConfigurationError(f"request option {name}=... takes {expected}, not {got}")


def options(**values: Any) -> dict[str, Any]:
    """Per-request options for a plain ``httpx`` request, as an ``extensions`` dict.

    An unknown name, or a value of the wrong kind, raises :class:`ConfigurationError`.

    Examples:
        >>> import httpx
        >>> extensions = options(total_timeout=3)
        >>> request = httpx.Request("GET", "https://api.example.com", extensions=extensions)
        >>> RequestOptions.of(request).total_timeout
        3
    """
    from ._arguments import unknown_argument

    for name in values.keys() - _FIELDS:
        raise unknown_argument("options", name, _FIELDS)
    check_options(values)
    if values.get("expected_statuses") is not None:
        values["expected_statuses"] = frozenset(values["expected_statuses"])
    if values.get("middleware") is not None:
        values["middleware"] = tuple(values["middleware"])
    return {EXTENSION_KEY: RequestOptions(**values)}
