"""Pagination against the demo API: every strategy, sync and async, with one test body."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import BaseModel

import buttress
from buttress.pagination import (
    CursorPagination,
    LinkHeaderPagination,
    OffsetLimitPagination,
    PageNumberPagination,
    PaginationStrategy,
    detect_strategy,
    get_path,
)
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too


class User(BaseModel):
    id: int
    name: str
    email: str


async def collect(paginator: Any) -> list[Any]:
    if isinstance(paginator, buttress.AsyncPaginator):
        return [item async for item in paginator]
    return list(paginator)


async def pages(paginator: Any, into: list[list[Any]] | None = None) -> list[list[Any]]:
    """Every page; ``into`` keeps those received before an error."""
    received = [] if into is None else into
    if isinstance(paginator, buttress.AsyncPaginator):
        async for page in paginator.iter_pages():
            received.append(page)
    else:
        received.extend(paginator.iter_pages())
    return received


STRATEGIES = [
    ("/users", "offset_limit", OffsetLimitPagination(limit=10), 10),
    ("/users/pages", "page_number", PageNumberPagination(per_page=10), 10),
    ("/users/cursor", "cursor", CursorPagination(per_page=10), 10),
    ("/users/linked", "link_header", LinkHeaderPagination(per_page=10), 10),
]


@pytest.mark.parametrize(("path", "name", "config", "page_count"), STRATEGIES)
async def test_every_strategy_by_name_and_by_object(
    client: Either, path: str, name: str, config: PaginationStrategy, page_count: int
) -> None:
    by_name = client.client.paginate(path, strategy=name)  # type: ignore[arg-type]
    by_object = client.client.paginate(path, pagination=config)
    assert [u["id"] for u in await collect(by_object)] == list(range(1, 101))
    assert [u["id"] for u in await collect(by_name)] == list(range(1, 101))
    assert by_object.pages_fetched == page_count


@pytest.mark.parametrize(
    ("path", "detected", "total"),
    [
        ("/users", OffsetLimitPagination, 100),
        ("/users/pages", PageNumberPagination, 100),
        ("/users/cursor", CursorPagination, None),
        ("/users/linked", LinkHeaderPagination, None),
    ],
)
async def test_auto_detection_from_the_first_page(
    client: Either, path: str, detected: type[PaginationStrategy], total: int | None
) -> None:
    paginator = client.client.paginate(path)
    before = paginator.strategy
    assert before is None
    ids = [u["id"] for u in await collect(paginator)]
    assert ids == list(range(1, 101))
    assert isinstance(paginator.strategy, detected)
    assert paginator.total_count == total


async def test_response_model_parses_each_item(client: Either) -> None:
    paginator = client.client.paginate("/users/cursor", response_model=User, max_items=3)
    users = await collect(paginator)
    assert [type(u) for u in users] == [User, User, User]
    assert users[0].name == "Ada Lovelace"


async def test_response_model_mismatch_names_the_item(client: Either) -> None:
    class Strict(BaseModel):
        missing: int

    with pytest.raises(buttress.ValidationError, match=r"item 0 of page 1"):
        await collect(client.client.paginate("/users", response_model=Strict))


async def test_dotted_total_key_and_metadata(client: Either) -> None:
    config = OffsetLimitPagination(limit=50, results_key="data", total_key="meta.total")
    paginator = client.client.paginate("/users", pagination=config)
    assert len(await collect(paginator)) == 100
    assert (paginator.total_count, paginator.pages_fetched) == (100, 2)
    assert paginator.next_request is None


async def test_max_pages_max_items_and_start_offset(client: Either) -> None:
    two_pages = client.client.paginate("/users/pages", max_pages=2)
    assert len(await collect(two_pages)) == 20
    assert two_pages.next_request is not None  # not finished: resumable
    first_five = client.client.paginate("/users", strategy="offset_limit", max_items=5)
    assert [u["id"] for u in await collect(first_five)] == [1, 2, 3, 4, 5]
    from_offset = client.client.paginate("/users", start_offset=95)
    assert [u["id"] for u in await collect(from_offset)] == [96, 97, 98, 99, 100]


async def test_breaking_out_stops_fetching(make_client: Any) -> None:
    with DemoServer() as server:
        either = make_client(base_url=server.url)
        paginator = either.client.paginate("/users/cursor")
        seen = 0
        if either.is_async:
            async for _ in paginator:
                seen += 1
                if seen == 15:
                    break
        else:
            for _ in paginator:
                seen += 1
                if seen == 15:
                    break
        assert server.app.hits["/users/cursor"] == 2
        assert paginator.pages_fetched == 2


async def test_resume_from_next_request(client: Either) -> None:
    first = client.client.paginate("/users/cursor", max_pages=3)
    head = [u["id"] for u in await collect(first)]
    resume = first.next_request
    assert resume is not None
    assert "cursor" in resume.params
    rest = client.client.paginate(resume.url, params=resume.params, strategy="cursor")
    assert head + [u["id"] for u in await collect(rest)] == list(range(1, 101))
    linked = client.client.paginate("/users/linked", max_pages=9)
    await collect(linked)
    assert linked.next_request is not None
    tail = client.client.paginate(linked.next_request.url, strategy="link_header")
    assert [u["id"] for u in await collect(tail)] == list(range(91, 101))


async def test_iter_pages_gives_whole_pages(client: Either) -> None:
    sizes = [len(page) for page in await pages(client.client.paginate("/users/linked"))]
    assert sizes == [10] * 10


class AfterId(PaginationStrategy):
    """The SPEC's custom strategy, adapted to the demo's cursor endpoint."""

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> dict[str, Any] | None:
        data = response.json()
        if data["meta"]["next_cursor"]:
            return {"cursor": data["meta"]["next_cursor"]}
        return None

    def extract_items(self, response: httpx.Response) -> list[Any]:
        return list(response.json()["items"])


async def test_custom_strategy(client: Either) -> None:
    paginator = client.client.paginate("/users/cursor", pagination=AfterId(), params={"limit": 25})
    assert len(await collect(paginator)) == 100
    assert paginator.pages_fetched == 4


async def test_every_page_goes_through_the_transport_stack(demo: DemoServer, mode: str) -> None:
    seen: list[str] = []

    class Counting(httpx.BaseTransport, httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.sync, self.async_ = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return self.sync.handle_request(request)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return await self.async_.handle_async_request(request)

        def close(self) -> None:
            self.sync.close()

        async def aclose(self) -> None:
            await self.async_.aclose()

    if mode == "async":
        async with buttress.AsyncClient(base_url=demo.url, transport=Counting()) as aclient:
            assert len(await collect(aclient.paginate("/users/linked"))) == 100
    else:
        with buttress.Client(base_url=demo.url, transport=Counting()) as sclient:
            assert len(await collect(sclient.paginate("/users/linked"))) == 100
    assert len(seen) == 10


async def test_unknown_strategy_and_conflicts_are_configuration_errors(client: Either) -> None:
    with pytest.raises(buttress.ConfigurationError, match="unknown pagination strategy"):
        client.client.paginate("/users", strategy="pages")  # type: ignore[arg-type]
    with pytest.raises(buttress.ConfigurationError, match="not both"):
        client.client.paginate("/users", strategy="cursor", pagination=CursorPagination())
    with pytest.raises(buttress.ConfigurationError, match="start_offset"):
        client.client.paginate("/users/cursor", strategy="cursor", start_offset=10)


async def test_missing_results_key_is_a_clear_error(client: Either) -> None:
    config = OffsetLimitPagination(results_key="rows")
    with pytest.raises(buttress.ValidationError, match="results_key='rows'"):
        await collect(client.client.paginate("/users", pagination=config))


async def test_async_alias(demo: DemoServer) -> None:
    async with buttress.AsyncClient(base_url=demo.url) as aclient:
        ids = [u["id"] async for u in aclient.paginate_async("/users", max_items=2)]
    assert ids == [1, 2]


def test_detection_of_single_pages_and_paths() -> None:
    assert get_path({"a": [{"b": 1}]}, "a.0.b") == 1
    assert get_path({"a": 1}, "a.b", "x") == "x"
    single = detect_strategy(httpx.Response(200, json=[1, 2]))
    assert single.get_next_request(httpx.Response(200, json=[1]), {}) is None
    token = detect_strategy(httpx.Response(200, json={"records": [], "nextPageToken": "t"}))
    assert isinstance(token, CursorPagination)
    assert (token.cursor_param, token.results_key) == ("pageToken", "records")


def test_a_strategy_that_asks_for_the_same_page_again_is_stopped() -> None:
    class Stuck(PaginationStrategy):
        def get_next_request(
            self, response: httpx.Response, current_params: dict[str, Any]
        ) -> dict[str, Any]:
            return dict(current_params)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [1]})

    with buttress.Client(
        base_url="https://api.example.com", transport=httpx.MockTransport(handler)
    ) as c:
        pages = c.paginate("/x", params={"offset": 10}, pagination=Stuck()).iter_pages()
        assert next(pages) == [1]
        with pytest.raises(buttress.PaginationError, match=r"page 2 .*offset=10\) is page 1"):
            next(pages)


class Cycling:
    """ASGI: pages whose links go round in a cycle, and a cursor that never ends.

    ``/cursor``: no cursor -> a -> b -> a. ``/linked/1`` and ``/linked/2`` link
    to each other. ``/endless?cursor=n`` has one item and cursor ``n + 1``, up to 8.
    """

    NEXT_CURSOR: ClassVar[dict[str, str]] = {"": "a", "a": "b", "b": "a"}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, query = scope["path"], dict(parse_qsl(scope["query_string"].decode()))
        headers = [(b"content-type", b"application/json")]
        cursor = query.get("cursor", "")
        if path == "/cursor":
            body: Any = {"items": [cursor or "first"], "next_cursor": self.NEXT_CURSOR[cursor]}
        elif path == "/endless":
            number = int(cursor or 0)
            body = {"items": [number], "next_cursor": str(number + 1) if number < 7 else None}
        else:
            page = path.rpartition("/")[2]
            body = [int(page)]
            following = "2" if page == "1" else "1"
            headers.append((b"link", f'</linked/{following}>; rel="next"'.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.fixture(scope="module")
def cycling() -> Iterator[DemoServer]:
    with DemoServer(Cycling()) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "first_pages", "repeat"),
    [
        (
            "/cursor",
            [["first"], ["a"], ["b"]],
            r"page 4 \(GET http://[\d.:]+/cursor\?cursor=a\) is page 2",
        ),
        ("/linked/1", [[1], [2]], r"page 3 \(GET http://[\d.:]+/linked/1\) is page 1"),
    ],
)
async def test_pages_that_go_round_in_a_cycle_raise_after_the_new_ones(
    make_client: Callable[..., Either],
    cycling: DemoServer,
    path: str,
    first_pages: list[list[Any]],
    repeat: str,
) -> None:
    client = make_client(base_url=cycling.url)
    paginator = client.client.paginate(path)
    received: list[list[Any]] = []
    with pytest.raises(buttress.PaginationError, match=repeat) as caught:
        await pages(paginator, into=received)
    assert received == first_pages
    assert caught.value.pages_fetched == len(first_pages)


async def test_the_default_page_cap_raises_and_a_chosen_one_does_not(
    make_client: Callable[..., Either], cycling: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buttress.pagination, "DEFAULT_MAX_PAGES", 5)
    client = make_client(base_url=cycling.url)
    capped = client.client.paginate("/endless")
    with pytest.raises(buttress.PaginationError, match="after 5 pages, the default cap"):
        await collect(capped)
    assert capped.pages_fetched == 5
    assert capped.next_request == buttress.pagination.PageRequest("/endless", {"cursor": "5"})
    assert await collect(client.client.paginate("/endless", max_pages=None)) == list(range(8))
    assert await collect(client.client.paginate("/endless", max_pages=3)) == [0, 1, 2]
    by_strategy = CursorPagination(cursor_path="next_cursor", results_key="items", max_pages=2)
    assert await collect(client.client.paginate("/endless", pagination=by_strategy)) == [0, 1]


class Edges:
    """ASGI: pages at the edges of the rules; ``seen`` keeps each request's headers.

    ``/filtered``: a cursor walk whose second page is empty but names the next (an
    API that filters on the server), and whose last, empty, names itself.
    ``/rel?rel=...``: a page whose ``Link`` names ``/rel/last`` with that ``rel``
    value as given; ``/rel/last`` ends the walk.
    ``/away``: a page whose ``Link`` names ``elsewhere``, a full URL the test sets.
    """

    def __init__(self) -> None:
        self.seen: list[dict[bytes, bytes]] = []
        self.elsewhere = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen.append(dict(scope["headers"]))
        path, query = scope["path"], dict(parse_qsl(scope["query_string"].decode()))
        headers = [(b"content-type", b"application/json")]
        body: Any = [path]
        if path == "/filtered":
            cursor = query.get("cursor", "")
            following = {"": "a", "a": "b", "b": "c", "c": "c"}[cursor]
            items = {"": [1, 2], "a": [], "b": [3], "c": []}[cursor]
            body = {"items": items, "next_cursor": following}
        elif path == "/rel":
            headers.append((b"link", f"</rel/last>; rel={query['rel']}".encode()))
        elif path == "/away":
            headers.append((b"link", f'<{self.elsewhere}>; rel="next"'.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.fixture(scope="module")
def edges() -> Iterator[DemoServer]:
    with DemoServer(Edges()) as server:
        yield server


async def test_a_cursor_walk_goes_on_past_an_empty_page_that_names_the_next(
    make_client: Callable[..., Either], edges: DemoServer
) -> None:
    client = make_client(base_url=edges.url)
    paginator = client.client.paginate("/filtered")
    assert await pages(paginator) == [[1, 2], [], [3], []]
    assert paginator.next_request is None  # the empty page that named itself ended it


@pytest.mark.parametrize("rel", ['"next last"', '"prev next"', "Next", '"NEXT"'])
async def test_detection_reads_every_relation_of_a_link(
    make_client: Callable[..., Either], edges: DemoServer, rel: str
) -> None:
    # RFC 8288 3.3: rel is a space-separated list of relation types, compared without case.
    client = make_client(base_url=edges.url)
    paginator = client.client.paginate("/rel", params={"rel": rel})
    assert await collect(paginator) == ["/rel", "/rel/last"]
    assert isinstance(paginator.strategy, LinkHeaderPagination)


async def test_a_next_page_on_another_origin_is_refused_with_the_credentials_kept_home(
    make_client: Callable[..., Either], edges: DemoServer
) -> None:
    # A redirect to another origin drops the credentials; a page link would have sent
    # them, since each page is a new request through the client's auth and headers.
    app, elsewhere = cast(Edges, edges.app), Edges()
    with DemoServer(elsewhere) as other:
        app.elsewhere = f"{other.url}/collect?page=2"
        client = make_client(
            base_url=edges.url, auth=("bearer", "SECRET-TOKEN"), headers={"X-API-Key": "KEY"}
        )
        paginator = client.client.paginate("/away")
        received: list[list[Any]] = []
        with pytest.raises(buttress.PaginationError, match="another origin") as caught:
            await pages(paginator, into=received)
    assert received == [["/away"]]
    assert elsewhere.seen == []
    assert f"{other.url}/collect?page=2" in str(caught.value)
    assert "SECRET-TOKEN" not in str(caught.value)
    assert caught.value.pages_fetched == 1
    # The page stays there to resume from, for a caller who trusts it.
    assert paginator.next_request == buttress.pagination.PageRequest(app.elsewhere, {})
