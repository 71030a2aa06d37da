"""Pagination: iterate over every item of a paginated endpoint, one page at a time.

``client.paginate(url, ...)`` returns a :class:`Paginator` (``for``) on a
:class:`~buttress.Client` and an :class:`AsyncPaginator` (``async for``) on an
:class:`~buttress.AsyncClient`. Each page is an ordinary ``client.get``, so it
goes through the whole transport stack: retries, rate limits, cache, logging.

How the next page is found is a :class:`PaginationStrategy`. The strategies are
pure (they read a response and the current query parameters and say what to
ask next), so the sync and async paginators share every decision:

- :class:`OffsetLimitPagination`: ``?offset=&limit=``; stops on an empty page or
  when ``offset`` reaches the total.
- :class:`PageNumberPagination`: ``?page=&per_page=``; stops on an empty page or
  past ``total_pages``.
- :class:`CursorPagination`: ``?cursor=`` taken from the body (``cursor_path``);
  stops when the body has no next cursor.
- :class:`LinkHeaderPagination`: follows RFC 8288 ``Link: <...>; rel="next"``
  (GitHub and many others); stops when there is no ``next`` link.

With no strategy, the first response decides (see :func:`detect_strategy`).

Two guards stop a walk that would never end, with a :class:`~buttress.PaginationError`
once the pages before have been yielded: a page asked for a second time (a
cursor that goes ``a -> b -> a``, ``Link`` headers that point back and forth,
an offset or page number that does not move), and :data:`DEFAULT_MAX_PAGES`
pages when neither ``max_pages=`` nor the strategy sets a cap
(``max_pages=None`` removes it). A cap you set stops the walk quietly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar, cast

import httpx
import pydantic

from ._exceptions import ConfigurationError, PaginationError, ValidationError, describe
from ._extensions import PAGINATION_BODY_KEY
from ._redact import redact_url
from ._redirects import same_origin
from .policies.headers import next_link, parse_link_header

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = [
    "DEFAULT_MAX_PAGES",
    "AsyncPaginator",
    "CursorPagination",
    "LinkHeaderPagination",
    "OffsetLimitPagination",
    "PageNumberPagination",
    "PageRequest",
    "PaginationConfig",
    "PaginationStrategy",
    "Paginator",
    "StrategyName",
    "detect_strategy",
    "get_path",
]

T = TypeVar("T")
_ClientT = TypeVar("_ClientT", "Client", "AsyncClient")

StrategyName: TypeAlias = Literal["offset_limit", "page_number", "cursor", "link_header"]
"""The names ``client.paginate(..., strategy=...)`` accepts."""

NextRequest: TypeAlias = "Mapping[str, Any] | str | httpx.URL | None"
"""What :meth:`PaginationStrategy.get_next_request` returns (see there)."""

_MISSING = object()

DEFAULT_MAX_PAGES = 10_000
"""Pages a walk fetches before it raises :class:`~buttress.PaginationError`, unless
``max_pages=`` (or the strategy's ``max_pages``) says otherwise; ``max_pages=None``
means no cap."""

_ITEM_KEYS = ("data", "results", "items", "records", "entries", "values", "users")


def get_path(body: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` in decoded JSON (``"meta.next_cursor"``, ``"items.0"``).

    Examples:
        >>> get_path({"meta": {"total": 3}}, "meta.total")
        3
        >>> get_path({"items": [{"id": 7}]}, "items.0.id")
        7
        >>> get_path({"meta": None}, "meta.total", default=0)
        0
    """
    current = body
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return default
    return current


def _body(response: httpx.Response) -> Any:
    """The decoded JSON body, decoded once per response however often a strategy asks."""
    cached = response.extensions.get(PAGINATION_BODY_KEY, _MISSING)
    if cached is _MISSING:
        cached = response.json() if response.content.strip() else None
        response.extensions[PAGINATION_BODY_KEY] = cached
    return cached


def _find_items(response: httpx.Response, results_key: str | None) -> list[Any]:
    body = _body(response)
    if results_key is not None:
        items = get_path(body, results_key, _MISSING)
        if isinstance(items, list):
            return items
        keys = sorted(body) if isinstance(body, Mapping) else type(body).__name__
        raise ValidationError(
            f"page {describe(response.request)} has no list at results_key={results_key!r} "
            f"(body: {keys})",
            response=response,
        )
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in _ITEM_KEYS:
            if isinstance(body.get(key), list):
                return list(body[key])
        for value in body.values():
            if isinstance(value, list):
                return value
    if body is None:
        return []
    raise ValidationError(
        f"page {describe(response.request)} has no list of items; set results_key",
        response=response,
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class PaginationStrategy(ABC):
    """How to find a page's items and the request for the next page.

    Subclass it for an API none of the built-ins fit: implement
    :meth:`get_next_request`, and :meth:`extract_items` unless the items are
    under ``results_key`` (a dotted path; with ``None``, a JSON list body or
    the first list under a usual key such as ``data`` or ``items``).
    Strategies hold configuration only, never per-iteration state, so one
    instance can serve many paginators at once.

    Examples:
        >>> class AfterId(PaginationStrategy):
        ...     def get_next_request(self, response, current_params):
        ...         data = response.json()
        ...         if data.get("has_more"):
        ...             return {"after_id": data["items"][-1]["id"]}
        ...         return None  # no more pages
        ...
        ...     def extract_items(self, response):
        ...         return response.json()["items"]
        >>> page = httpx.Response(200, json={"items": [{"id": 4}], "has_more": True})
        >>> AfterId().get_next_request(page, {})
        {'after_id': 4}
    """

    results_key: str | None = None
    total_key: str | None = None
    max_pages: int | None = None

    def __post_init__(self) -> None:
        """Check a dataclass strategy's fields once, when it is made (the built-ins are).

        Raises:
            ConfigurationError: naming the strategy and the field, e.g.
                ``invalid OffsetLimitPagination: limit must be an int >= 1 or None, not 0``.
        """
        for item in fields(self):  # type: ignore[arg-type]  # only dataclasses get here
            value = getattr(self, item.name)
            kind = getattr(item.type, "__name__", str(item.type))  # "int | None" or int
            optional = kind.endswith("| None")
            if value is None and optional:
                continue
            if kind.startswith("int"):
                least = 0 if item.name == "start_page" else 1
                expected = f"an int >= {least}"
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
            elif kind.startswith("str"):
                expected, ok = "a string", isinstance(value, str)
            else:
                continue
            if not ok:
                got = repr(value) if isinstance(value, int | float) else type(value).__name__
                raise ConfigurationError(
                    f"invalid {type(self).__name__}: {item.name} must be {expected}"
                    f"{' or None' if optional else ''}, not {got}"
                )

    def first_params(self, params: Mapping[str, Any], start_offset: int | None) -> dict[str, Any]:
        """Query parameters for the first page, given the caller's ``params``."""
        if start_offset is not None:
            raise ConfigurationError(
                f"start_offset needs an offset-based strategy, not {type(self).__name__}"
            )
        return dict(params)

    @abstractmethod
    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> Mapping[str, Any] | str | httpx.URL | None:
        """What to request after ``response`` (fetched with ``current_params``).

        Return a mapping of query parameters to change (merged over
        ``current_params``; a ``None`` value removes one), a full URL to fetch
        next (its query included), or ``None`` when this was the last page.
        """

    def extract_items(self, response: httpx.Response) -> list[Any]:
        """The items on the page ``response``."""
        return _find_items(response, self.results_key)

    def total_count(self, response: httpx.Response) -> int | None:
        """The total number of items, when the API says (``total_key``)."""
        if self.total_key is None:
            return None
        return _as_int(get_path(_body(response), self.total_key))


PaginationConfig = PaginationStrategy
"""SPEC's name for a pagination configuration: any :class:`PaginationStrategy`."""


def _sized(size_param: str, size: int | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` over a page size, when one is set (the caller's own value wins)."""
    return {**({} if size is None else {size_param: size}), **params}


@dataclass(frozen=True, kw_only=True)
class OffsetLimitPagination(PaginationStrategy):
    """``?offset=&limit=`` pagination; the offset advances by the items received.

    ``limit=None`` sends no limit (the server's page size). The iteration ends
    on an empty page or once the offset reaches the total (``total_key``).

    Examples:
        >>> from buttress import Client
        >>> def emails(client: Client) -> list[str]:
        ...     paging = OffsetLimitPagination(limit=50, results_key="data", total_key="total")
        ...     return [user["email"] for user in client.paginate("/users", pagination=paging)]
    """

    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int | None = 100
    max_pages: int | None = None
    results_key: str | None = "data"
    total_key: str | None = "total"

    def first_params(self, params: Mapping[str, Any], start_offset: int | None) -> dict[str, Any]:
        first = {self.offset_param: 0, **_sized(self.limit_param, self.limit, params)}
        if start_offset is not None:
            first[self.offset_param] = start_offset
        return first

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        count = len(self.extract_items(response))
        if count == 0:
            return None
        offset = (_as_int(current_params.get(self.offset_param)) or 0) + count
        total = self.total_count(response)
        if total is not None and offset >= total:
            return None
        return {self.offset_param: offset}


@dataclass(frozen=True, kw_only=True)
class PageNumberPagination(PaginationStrategy):
    """``?page=&per_page=`` pagination, counting from ``start_page``.

    Ends on an empty page or after page ``total_pages_key`` (when the body has it).

    Examples:
        >>> from buttress import Client
        >>> def names(client: Client) -> list[str]:
        ...     paging = PageNumberPagination(per_page=25)
        ...     return [user["name"] for user in client.paginate("/users/pages", pagination=paging)]
    """

    page_param: str = "page"
    per_page_param: str = "per_page"
    per_page: int | None = None
    start_page: int = 1
    max_pages: int | None = None
    results_key: str | None = "results"
    total_key: str | None = "total"
    total_pages_key: str | None = "total_pages"

    def first_params(self, params: Mapping[str, Any], start_offset: int | None) -> dict[str, Any]:
        first = {
            self.page_param: self.start_page,
            **_sized(self.per_page_param, self.per_page, params),
        }
        if start_offset is not None:
            if not self.per_page or start_offset % self.per_page:
                raise ConfigurationError(
                    "start_offset with page numbers needs per_page set and a multiple of it"
                )
            first[self.page_param] = self.start_page + start_offset // self.per_page
        return first

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        if not self.extract_items(response):
            return None
        page = (_as_int(current_params.get(self.page_param)) or self.start_page) + 1
        if self.total_pages_key is not None:
            pages = _as_int(get_path(_body(response), self.total_pages_key))
            if pages is not None and page > pages - 1 + self.start_page:
                return None
        return {self.page_param: page}


class _SizedFirstPage(PaginationStrategy):
    """A strategy that asks for ``per_page`` items a page (in ``per_page_param``) from its
    first request on."""

    per_page: int | None
    per_page_param: str

    def first_params(self, params: Mapping[str, Any], start_offset: int | None) -> dict[str, Any]:
        sized = _sized(self.per_page_param, self.per_page, params)
        return super().first_params(sized, start_offset)


@dataclass(frozen=True, kw_only=True)
class CursorPagination(_SizedFirstPage):
    """Opaque-cursor pagination: the next cursor is read from the body at ``cursor_path``.

    Ends when the cursor is missing, empty or ``null``, or when an empty page
    names its own cursor again. An empty page with a new cursor does not end it:
    APIs that filter on the server (Google's ``nextPageToken`` among them) may
    send one before the results go on.

    Examples:
        >>> from buttress import Client
        >>> def ids(client: Client) -> list[int]:
        ...     paging = CursorPagination(cursor_path="meta.next_cursor", results_key="items")
        ...     return [user["id"] for user in client.paginate("/users/cursor", pagination=paging)]
    """

    cursor_param: str = "cursor"
    cursor_path: str = "meta.next_cursor"
    results_key: str | None = "items"
    per_page: int | None = None
    per_page_param: str = "limit"
    max_pages: int | None = None
    total_key: str | None = None

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        cursor = get_path(_body(response), self.cursor_path)
        if cursor in (None, "", False):
            return None
        if cursor == current_params.get(self.cursor_param) and not self.extract_items(response):
            return None  # an empty page that points back at itself: the end, said another way
        return {self.cursor_param: cursor}


@dataclass(frozen=True, kw_only=True)
class LinkHeaderPagination(_SizedFirstPage):
    """Follows the RFC 8288 ``Link`` header's ``rel="next"`` URL, as GitHub sends it.

    The items are the JSON list body, or the list at ``results_key``.

    Examples:
        >>> from buttress import Client
        >>> def all_users(client: Client) -> list[dict[str, object]]:
        ...     return list(client.paginate("/users/linked", pagination=LinkHeaderPagination()))
    """

    results_key: str | None = None
    per_page: int | None = None
    per_page_param: str = "per_page"
    max_pages: int | None = None
    total_key: str | None = None

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> str | None:
        return next_link(response.headers, base=response.url)


@dataclass(frozen=True, kw_only=True)
class _SinglePage(PaginationStrategy):
    """What auto-detection picks for a response with no sign of pagination."""

    results_key: str | None = None

    def get_next_request(self, response: httpx.Response, current_params: dict[str, Any]) -> None:
        return None


_NAMED: Mapping[str, type[PaginationStrategy]] = {
    "offset_limit": OffsetLimitPagination,
    "page_number": PageNumberPagination,
    "cursor": CursorPagination,
    "link_header": LinkHeaderPagination,
}

# (where the next cursor is, the query parameter it goes back in)
_CURSOR_PATHS = (
    ("next_cursor", "cursor"),
    ("meta.next_cursor", "cursor"),
    ("pagination.next_cursor", "cursor"),
    ("cursor.next", "cursor"),
    ("nextCursor", "cursor"),
    ("next_page_token", "page_token"),
    ("nextPageToken", "pageToken"),
)


def _results_key(body: Any) -> str | None:
    if isinstance(body, Mapping):
        for key in (*_ITEM_KEYS, *body):
            if isinstance(body.get(key), list):
                return str(key)
    return None


def detect_strategy(response: httpx.Response) -> PaginationStrategy:
    """Guess the strategy from the first page, when ``paginate`` was given none.

    In order: a ``Link`` header with ``rel="next"`` (or ``first``/``last``)
    means :class:`LinkHeaderPagination`; a next-cursor field (``next_cursor``,
    ``meta.next_cursor``, ``pagination.next_cursor``, ``nextCursor``,
    ``next_page_token``, ``nextPageToken``; present, even ``null``) means
    :class:`CursorPagination`; ``total_pages`` or ``page`` means
    :class:`PageNumberPagination`; ``offset`` or a ``total`` means
    :class:`OffsetLimitPagination` (without a limit: the server's page size).
    Anything else is a single page. The items are the list body or the first
    list under ``data``, ``results``, ``items``, ... (then any list field).

    Examples:
        >>> page = httpx.Response(200, json={"items": [], "meta": {"next_cursor": "abc"}})
        >>> strategy = detect_strategy(page)
        >>> (type(strategy).__name__, strategy.cursor_path, strategy.results_key)
        ('CursorPagination', 'meta.next_cursor', 'items')
    """
    rels = {
        rel
        for value in response.headers.get_list("link")
        for link in parse_link_header(value)
        for rel in link.rels
    }
    if rels & {"next", "last", "first"}:
        return LinkHeaderPagination(results_key=_results_key(_body(response)))
    body = _body(response)
    if not isinstance(body, Mapping):
        return _SinglePage(results_key=None)
    key = _results_key(body)
    for path, param in _CURSOR_PATHS:
        if get_path(body, path, _MISSING) is not _MISSING:
            return CursorPagination(cursor_path=path, cursor_param=param, results_key=key)
    total = "total" if "total" in body else None
    if "total_pages" in body or "page" in body:
        return PageNumberPagination(results_key=key, total_key=total)
    if "offset" in body or total:
        return OffsetLimitPagination(limit=None, results_key=key, total_key=total)
    return _SinglePage(results_key=key)


@dataclass(frozen=True)
class PageRequest:
    """A page to fetch: ``url`` with query ``params``; what a stopped paginator resumes from.

    Examples:
        >>> PageRequest("/users", {"offset": 20, "limit": 10}).params["offset"]
        20
    """

    url: str
    params: dict[str, Any] = field(default_factory=dict)


def _strategy(
    pagination: PaginationStrategy | None, strategy: StrategyName | PaginationStrategy | None
) -> PaginationStrategy | None:
    if pagination is not None and strategy is not None:
        raise ConfigurationError("give pagination= or strategy=, not both")
    if isinstance(strategy, str):
        if strategy not in _NAMED:
            raise ConfigurationError(
                f"unknown pagination strategy {strategy!r}; known: {sorted(_NAMED)}"
            )
        return _NAMED[strategy]()
    return pagination or strategy


class _Pages(Generic[T]):
    """The iteration state and every decision, shared by both paginators (no I/O here)."""

    def __init__(
        self,
        url: httpx.URL | str,
        params: Mapping[str, Any],
        strategy: PaginationStrategy | None,
        response_model: Any,
        max_pages: int | object | None,
        max_items: int | None,
        start_offset: int | None,
    ) -> None:
        self.strategy = strategy
        self.pages_fetched = 0
        self.items_seen = 0
        self.total_count: int | None = None
        if max_pages is _MISSING and getattr(strategy, "max_pages", None) is not None:
            max_pages = strategy.max_pages  # type: ignore[union-attr]
        # A cap nobody chose raises when reached (the data goes on); a chosen one ends the walk.
        self._default_cap = max_pages is _MISSING
        self._max_pages = (
            DEFAULT_MAX_PAGES if max_pages is _MISSING else cast("int | None", max_pages)
        )
        self._max_items = max_items
        self._fetched: dict[tuple[str, str, bytes], int] = {}  # each request -> its page number
        self._page_url: httpx.URL | None = None  # where the last page came from
        self._adapter = None if response_model is None else pydantic.TypeAdapter(response_model)
        self._model = response_model
        if strategy is None and start_offset is not None:
            self.strategy = strategy = OffsetLimitPagination(limit=None, results_key=None)
        first = dict(params) if strategy is None else strategy.first_params(params, start_offset)
        self.next_request: PageRequest | None = PageRequest(str(url), first)

    def pending(self) -> PageRequest | None:
        """The next page to fetch, or ``None`` when done or a limit is reached.

        A page on another origin than the one before is refused: its URL came from
        the server, and the request would carry the client's credentials there.
        """
        if self.next_request is None:
            return None
        target = httpx.URL(self.next_request.url)
        came_from = self._page_url
        if came_from is not None and target.is_absolute_url and not same_origin(came_from, target):
            raise PaginationError(
                f"refused to fetch page {self.pages_fetched + 1} from another origin: "
                f"{redact_url(target)}, named by page {self.pages_fetched} "
                f"({redact_url(came_from)}); the client's credentials go only where you send "
                "them: paginate that URL yourself if you trust it",
                request=self.next_request,
                pages_fetched=self.pages_fetched,
            )
        if self._max_items is not None and self.items_seen >= self._max_items:
            return None
        if self._max_pages is not None and self.pages_fetched >= self._max_pages:
            if self._default_cap:
                raise PaginationError(
                    f"pagination stopped after {self.pages_fetched} pages, the default cap, "
                    "with more to come; pass max_pages= a larger number, or None for no cap",
                    request=self.next_request,
                    pages_fetched=self.pages_fetched,
                )
            return None
        return self.next_request

    def _check_new(self, response: httpx.Response) -> None:
        """Raise :class:`PaginationError` if the page ``response`` answers was fetched before.

        A page is its request: the URL, and the body too where pages are asked
        for with one (GraphQL's variables).
        """
        asked = (response.history[0] if response.history else response).request
        page = self.pages_fetched + 1
        first = self._fetched.setdefault((asked.method, str(asked.url), asked.content), page)
        if first != page:
            raise PaginationError(
                f"pagination went round in a cycle: page {page} "
                f"({asked.method} {redact_url(asked.url)}) is page {first} again",
                request=self.next_request,
                pages_fetched=self.pages_fetched,
            )

    def accept(self, response: httpx.Response) -> list[T]:
        """Take in the page ``response``; returns its (parsed, trimmed) items."""
        current = self.next_request
        assert current is not None
        self._check_new(response)
        if self.strategy is None:
            self.strategy = detect_strategy(response)
        strategy = self.strategy
        self.pages_fetched += 1
        self._page_url = response.url
        items = strategy.extract_items(response)
        total = strategy.total_count(response)
        if total is not None:
            self.total_count = total
        following = strategy.get_next_request(response, dict(current.params))
        if following is None:
            self.next_request = None
        elif isinstance(following, str | httpx.URL):
            self.next_request = PageRequest(str(following), {})
        else:
            merged = {**current.params, **following}
            params = {k: v for k, v in merged.items() if v is not None}
            self.next_request = PageRequest(current.url, params)
        if self._max_items is not None:
            items = items[: max(0, self._max_items - self.items_seen)]
        self.items_seen += len(items)
        return self._parse(items, response)

    def _parse(self, items: Sequence[Any], response: httpx.Response) -> list[T]:
        if self._adapter is None:
            return list(items)
        parsed: list[T] = []
        for index, item in enumerate(items):
            try:
                parsed.append(self._adapter.validate_python(item))
            except pydantic.ValidationError as exc:
                errors = exc.errors(include_url=False)
                raise ValidationError(
                    f"item {index} of page {self.pages_fetched} ({describe(response.request)}) "
                    f"does not match {getattr(self._model, '__name__', self._model)}: "
                    + "; ".join(
                        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                        for e in errors[:5]
                    ),
                    errors=errors,
                    model=self._model,
                    response=response,
                ) from None
        return parsed


class _PaginatorBase(Generic[T, _ClientT]):
    def __init__(self, client: _ClientT, pages: _Pages[T], kwargs: dict[str, Any]) -> None:
        self._client: _ClientT = client
        self._pages, self._kwargs = pages, kwargs

    def _fetch(self, page: PageRequest) -> Any:
        """Send the request for ``page``, awaitable on an ``AsyncClient`` (a GET; GraphQL's
        paginators POST instead)."""
        return self._client.get(page.url, params=page.params or None, **self._kwargs)

    @property
    def total_count(self) -> int | None:
        """The total number of items the API reported (``None`` until a page says)."""
        return self._pages.total_count

    @property
    def pages_fetched(self) -> int:
        """How many pages have been fetched so far."""
        return self._pages.pages_fetched

    @property
    def next_request(self) -> PageRequest | None:
        """The page that comes next (``None`` at the end): resume from it later.

        ``client.paginate(p.url, params=p.params, pagination=...)`` continues
        with the page after the last one fetched.
        """
        return self._pages.next_request

    @property
    def strategy(self) -> PaginationStrategy | None:
        """The strategy in use (the detected one, once the first page is in)."""
        return self._pages.strategy


class Paginator(_PaginatorBase[T, "Client"]):
    """Iterates over the items of every page (``client.paginate(...)`` on a Client).

    Breaking out of the loop stops fetching. Iterating again continues where
    the last iteration stopped, at the next page.

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     paginator = client.paginate("/users", strategy="offset_limit", max_pages=2)
        ...     names = [user["name"] for user in paginator]
        ...     (len(names), paginator.pages_fetched, paginator.total_count)
        (100, 1, 100)
    """

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page

    def iter_pages(self) -> Iterator[list[T]]:
        """Iterate over whole pages (lists of items) instead of items.

        Examples:
            >>> from buttress import Client
            >>> def page_sizes(client: Client) -> list[int]:
            ...     return [len(page) for page in client.paginate("/users/cursor").iter_pages()]
        """
        while (request := self._pages.pending()) is not None:
            yield self._pages.accept(self._fetch(request))


class AsyncPaginator(_PaginatorBase[T, "AsyncClient"]):
    """Iterates over the items of every page with ``async for`` (``AsyncClient.paginate``).

    Examples:
        >>> from buttress import AsyncClient
        >>> async def names(client: AsyncClient) -> list[str]:
        ...     return [user["name"] async for user in client.paginate("/users")]
    """

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page:
                yield item

    async def iter_pages(self) -> AsyncIterator[list[T]]:
        """Iterate over whole pages (lists of items) instead of items.

        Examples:
            >>> from buttress import AsyncClient
            >>> async def page_sizes(client: AsyncClient) -> list[int]:
            ...     return [len(page) async for page in client.paginate("/users").iter_pages()]
        """
        while (request := self._pages.pending()) is not None:
            yield self._pages.accept(await self._fetch(request))


def make_pages(
    url: httpx.URL | str,
    *,
    response_model: Any = None,
    pagination: PaginationStrategy | None = None,
    strategy: StrategyName | PaginationStrategy | None = None,
    max_pages: int | object | None = _MISSING,
    max_items: int | None = None,
    start_offset: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> _Pages[Any]:
    """The shared iteration state for ``client.paginate`` (both clients call this)."""
    return _Pages(
        url,
        dict(params or {}),
        _strategy(pagination, strategy),
        response_model,
        max_pages,
        max_items,
        start_offset,
    )
