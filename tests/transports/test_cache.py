"""CacheTransport against a scripted origin: RFC 9111 private-cache semantics.

Every test runs sync and async, on the memory and the disk backend; time moves
only through the fake clock.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hishel import Entry, Headers

import buttress
from buttress.cache import CacheBackend, CacheConfig, DiskCache, MemoryCache
from buttress.testing import FakeClock
from buttress.transports import CacheTransport, RetryTransport
from buttress.transports.cache import CACHE_EXTENSION, CacheResult
from tests.transports.conftest import Plain

from .cache_origin import Origin, httpx_client

pytestmark = pytest.mark.anyio

Make = Callable[..., Plain]


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> CacheBackend:
    if request.param == "memory":
        return MemoryCache(max_size=100)
    return DiskCache(directory=tmp_path / "cache", max_size_mb=5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def origin(clock: FakeClock) -> Origin:
    return Origin(clock)


@pytest.fixture
async def make(
    mode: str, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> AsyncIterator[Make]:
    made: list[Plain] = []

    def factory(inner: Any = None, **config: Any) -> Plain:
        config.setdefault("backend", backend)
        transport = CacheTransport(inner or origin.transport, CacheConfig(**config), clock=clock)
        caller = httpx_client(transport, is_async=mode == "async")
        made.append(caller)
        return caller

    yield factory
    for caller in made:
        await caller.aclose()


def result(response: httpx.Response) -> CacheResult:
    found = response.extensions[CACHE_EXTENSION]
    assert isinstance(found, CacheResult)
    return found


# -- freshness -------------------------------------------------------------------------------


async def test_fresh_response_is_served_from_cache_with_its_age(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    first = await api.get("/users/1")
    clock.advance(10)
    second = await api.get("/users/1")
    assert (origin.calls, result(first).from_cache, result(first).stored) == (1, False, True)
    assert result(second).from_cache
    assert result(second).age == pytest.approx(10)
    assert second.headers["age"] == "10"
    assert second.json() == {"v": 1}


async def test_max_age_expiry_revalidates_with_etag(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> None:
    origin.answer(cache_control="max-age=60", etag='"v1"')
    api = make()
    await api.get("/doc")
    clock.advance(61)
    origin.answer(304, b"", cache_control="max-age=60", etag='"v1"')
    revalidated = await api.get("/doc")
    assert origin.last.headers["if-none-match"] == '"v1"'
    assert result(revalidated).revalidated
    assert revalidated.json() == {"v": 1}
    clock.advance(30)  # the 304 refreshed the stored response: fresh again
    assert result(await api.get("/doc")).from_cache
    assert origin.calls == 2
    assert backend.stats().revalidations == 1


async def test_changed_resource_replaces_the_stored_one(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> None:
    origin.answer(cache_control="max-age=1", etag='"v1"')
    api = make()
    await api.get("/doc")
    clock.advance(2)
    origin.answer(body=b'{"v": 2}', cache_control="max-age=60", etag='"v2"')
    assert (await api.get("/doc")).json() == {"v": 2}
    assert (await api.get("/doc")).json() == {"v": 2}
    assert origin.calls == 2
    assert backend.size == 1


async def test_last_modified_revalidation_sends_if_modified_since(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    modified = origin.date(-3600)
    origin.answer(cache_control="max-age=5", last_modified=modified)
    api = make()
    await api.get("/doc")
    clock.advance(6)
    origin.answer(304, b"", cache_control="max-age=5", last_modified=modified)
    response = await api.get("/doc")
    assert origin.last.headers["if-modified-since"] == modified
    assert result(response).revalidated


async def test_rfc9111_4_2_3_incoming_age_counts_towards_expiry(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=60", age="50")
    api = make()
    await api.get("/doc")
    clock.advance(5)
    hit = await api.get("/doc")
    assert result(hit).age == pytest.approx(55)
    assert isinstance(hit, httpx.Response)
    clock.advance(6)
    assert not result(await api.get("/doc")).from_cache


async def test_expires_header_sets_freshness_and_invalid_means_expired(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(expires=origin.date(30))
    api = make()
    await api.get("/a")
    clock.advance(20)
    assert result(await api.get("/a")).from_cache
    clock.advance(11)
    assert not result(await api.get("/a")).from_cache
    origin.answer(expires="0")
    await api.get("/b")
    assert not result(await api.get("/b")).from_cache


@pytest.mark.parametrize("cache_control", ["max-age=-1", "max-age=soon", "max-age=0, max-age=600"])
async def test_invalid_or_duplicate_max_age_is_stale_and_not_default_ttl(
    make: Make, origin: Origin, cache_control: str
) -> None:
    origin.answer(cache_control=cache_control)
    api = make(default_ttl=600)
    await api.get("/doc")
    assert not result(await api.get("/doc")).from_cache


async def test_list_or_invalid_age_uses_the_first_member_or_none(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=60", age="30, 5")
    api = make()
    await api.get("/a")
    assert result(await api.get("/a")).age == pytest.approx(30)
    origin.answer(cache_control="max-age=60", age="-3")
    await api.get("/b")
    assert result(await api.get("/b")).age == pytest.approx(0)


async def test_s_maxage_is_ignored_by_a_private_cache(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="s-maxage=600, max-age=10")
    api = make()
    await api.get("/doc")
    clock.advance(11)
    assert not result(await api.get("/doc")).from_cache


async def test_default_ttl_is_the_freshness_of_responses_without_any(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer()
    api = make(default_ttl=30)
    await api.get("/doc")
    clock.advance(29)
    assert result(await api.get("/doc")).from_cache
    clock.advance(2)
    assert not result(await api.get("/doc")).from_cache


async def test_rfc9111_4_2_2_heuristic_freshness_by_default(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(last_modified=origin.date(-1000))  # 10% of 1000 s: fresh for 100 s
    api = make()
    await api.get("/doc")
    clock.advance(90)
    assert result(await api.get("/doc")).from_cache
    clock.advance(20)
    assert not result(await api.get("/doc")).from_cache


# -- response directives ---------------------------------------------------------------------


async def test_no_store_response_is_not_stored(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="no-store, max-age=60")
    api = make()
    await api.get("/doc")
    assert not result(await api.get("/doc")).from_cache
    assert origin.calls == 2


async def test_no_store_answers_count_as_misses_and_leave_stored_entries_alone(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> None:
    origin.answer(cache_control="no-store")
    api = make()
    first = result(await api.get("/doc"))
    assert (first.from_cache, first.stored) == (False, False)
    origin.answer(cache_control="max-age=10", etag='"s"')
    await api.get("/other")
    clock.advance(11)
    origin.answer(cache_control="no-store")  # the stale entry's refetch may not be stored
    assert not result(await api.get("/other")).stored
    stats = backend.stats()
    assert (stats.misses, stats.size) == (3, 1)


async def test_no_cache_response_is_revalidated_every_time(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="no-cache, max-age=60", etag='"x"')
    api = make()
    await api.get("/doc")
    origin.answer(304, b"", etag='"x"')
    response = await api.get("/doc")
    assert origin.calls == 2
    assert origin.last.headers["if-none-match"] == '"x"'
    assert result(response).revalidated


@pytest.mark.parametrize("directive", ["private", "public"])
async def test_private_and_public_responses_are_stored(
    make: Make, origin: Origin, directive: str
) -> None:
    origin.answer(cache_control=f"{directive}, max-age=60")
    api = make()
    await api.get("/doc")
    assert result(await api.get("/doc")).from_cache


@pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "no-cache"])
async def test_rfc9111_5_2_2_never_stale_with_max_stale_or_stale_if_error(
    make: Make, origin: Origin, clock: FakeClock, directive: str
) -> None:
    origin.answer(cache_control=f"max-age=1, {directive}")
    api = make(stale_if_error=600)
    await api.get("/doc")
    clock.advance(5)
    assert not result(
        await api.get("/doc", extensions=buttress.options(cache_control="max-stale=60"))
    ).from_cache
    clock.advance(5)
    origin.answer(503)
    assert (await api.get("/doc")).status_code == 503


async def test_vary_keeps_variants_apart(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60", vary="Accept")
    api = make()
    await api.get("/doc", headers={"accept": "application/json"})
    assert not result(await api.get("/doc", headers={"accept": "text/csv"})).from_cache
    assert result(await api.get("/doc", headers={"accept": "application/json"})).from_cache
    assert result(await api.get("/doc", headers={"accept": "text/csv"})).from_cache
    assert origin.calls == 2


@pytest.mark.parametrize(("status", "stored"), [(302, True), (500, True), (200, True)])
async def test_any_final_status_with_explicit_freshness_is_stored(
    make: Make, origin: Origin, status: int, stored: bool
) -> None:
    origin.answer(status, cache_control="max-age=60")
    api = make()
    await api.get("/a")
    assert result(await api.get("/a")).from_cache is stored


@pytest.mark.parametrize(("status", "stored"), [(302, False), (500, False), (404, True)])
async def test_default_ttl_applies_only_to_heuristically_cacheable_statuses(
    make: Make, origin: Origin, status: int, stored: bool
) -> None:
    origin.answer(status)
    api = make(default_ttl=300)
    await api.get("/a")
    assert result(await api.get("/a")).from_cache is stored


async def test_cacheable_status_codes_restricts_storing(make: Make, origin: Origin) -> None:
    origin.answer(200, cache_control="max-age=60")
    narrow = make(cacheable_status_codes={203})
    await narrow.get("/b")
    assert not result(await narrow.get("/b")).from_cache
    origin.answer(203, cache_control="max-age=60")
    await narrow.get("/c")
    assert result(await narrow.get("/c")).from_cache


async def test_rfc9111_4_1_vary_ignores_whitespace_differences(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60", vary="Accept-Language")
    api = make()
    await api.get("/doc", headers={"accept-language": "en,fr"})
    assert result(await api.get("/doc", headers={"accept-language": "en, fr"})).from_cache


async def test_vary_star_never_matches_and_is_not_stored(
    make: Make, origin: Origin, backend: CacheBackend
) -> None:
    origin.answer(cache_control="max-age=60", vary="Accept, *")
    api = make()
    for _ in range(3):
        assert not result(await api.get("/doc")).from_cache
    # Stored, such answers could never be used, and would push out entries that could.
    assert (origin.calls, backend.size) == (3, 0)


async def test_rfc9111_3_1_headers_named_by_connection_are_not_stored(
    make: Make, origin: Origin
) -> None:
    origin.answer(cache_control="max-age=60", connection="x-hop", x_hop="1", x_kept="2")
    api = make()
    await api.get("/doc")
    hit = await api.get("/doc")
    assert result(hit).from_cache
    assert "x-hop" not in hit.headers
    assert hit.headers["x-kept"] == "2"


async def test_rfc9111_3_1_a_body_httpx_decoded_is_stored_without_its_coding(
    make: Make, origin: Origin
) -> None:
    # MockTransport reads the body (and httpx decodes it) before the cache sees it.
    origin.answer(
        body=gzip.compress(b'{"zipped": true}'), cache_control="max-age=60", content_encoding="gzip"
    )
    api = make()
    assert (await api.get("/z")).json() == {"zipped": True}
    hit = await api.get("/z")
    assert result(hit).from_cache
    assert hit.json() == {"zipped": True}
    assert "content-encoding" not in hit.headers


async def test_rfc9111_3_1_a_coding_httpx_does_not_decode_is_kept(
    make: Make, origin: Origin
) -> None:
    origin.answer(body=b"\x00packed", cache_control="max-age=60", content_encoding="x-packed")
    api = make()
    await api.get("/p")
    hit = await api.get("/p")
    assert result(hit).from_cache
    assert (hit.headers["content-encoding"], hit.content) == ("x-packed", b"\x00packed")


async def test_rfc9111_3_1_a_streamed_body_is_stored_as_received(
    make: Make, origin: Origin
) -> None:
    zipped = gzip.compress(b'{"zipped": true}')

    def streaming(request: httpx.Request) -> httpx.Response:
        headers = {"cache-control": "max-age=60", "content-encoding": "gzip", "x-kept": "1"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(zipped))  # unread

    origin.answer(handler=streaming)
    api = make()
    assert (await api.get("/z")).json() == {"zipped": True}
    hit = await api.get("/z")
    assert result(hit).from_cache
    assert (hit.headers["content-encoding"], hit.headers["x-kept"]) == ("gzip", "1")
    assert hit.headers["content-length"] == str(len(zipped))
    assert hit.json() == {"zipped": True}


# -- methods ---------------------------------------------------------------------------------


async def test_only_get_and_head_are_cached_and_separately(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    await api.request("OPTIONS", "/doc")
    await api.request("OPTIONS", "/doc")
    assert origin.calls == 2
    await api.request("HEAD", "/doc")
    assert result(await api.request("HEAD", "/doc")).from_cache
    assert not result(await api.get("/doc")).from_cache  # a HEAD response has no body to serve
    assert origin.calls == 4
    await api.get("/other")
    get_answers_head = await api.request("HEAD", "/other")
    assert result(get_answers_head).from_cache
    assert get_answers_head.content == b""
    assert get_answers_head.headers["content-length"] == "8"
    assert origin.calls == 5


async def test_rfc9111_3_1_a_stored_head_response_keeps_its_content_length(
    make: Make, origin: Origin
) -> None:
    # RFC 9110 9.3.2: a HEAD response's Content-Length is the length its GET would have.
    def head(request: httpx.Request) -> httpx.Response:
        headers = {"cache-control": "max-age=60", "content-length": "1234"}
        return httpx.Response(200, headers=headers)

    origin.answer(handler=head)
    api = make()
    await api.request("HEAD", "/doc")
    hit = await api.request("HEAD", "/doc")
    assert (result(hit).from_cache, hit.headers["content-length"]) == (True, "1234")


async def test_rfc9110_8_6_a_stored_204_gains_no_content_length(make: Make, origin: Origin) -> None:
    origin.answer(status=204, body=b"", cache_control="max-age=60")
    api = make()
    await api.get("/doc")
    hit = await api.get("/doc")
    assert result(hit).from_cache
    assert "content-length" not in hit.headers


async def test_rfc9110_6_6_1_a_response_stored_without_date_gets_one(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(
        handler=lambda request: httpx.Response(200, headers={"cache-control": "max-age=60"})
    )
    api = make()
    await api.get("/doc")
    clock.advance(5)
    hit = await api.get("/doc")
    assert result(hit) == CacheResult(True, age=5)
    assert hit.headers["date"] == origin.date(-5)  # when it was received, not when served


@pytest.mark.parametrize(
    "validator",
    [
        {"if-none-match": '"v1"'},
        {"if-modified-since": "Tue, 14 Nov 2023 22:13:20 GMT"},
        {"if-match": '"v1"'},
        {"if-unmodified-since": "Tue, 14 Nov 2023 22:13:20 GMT"},
    ],
)
async def test_rfc9111_4_3_2_a_callers_conditional_request_gets_the_origins_answer(
    make: Make, origin: Origin, validator: dict[str, str]
) -> None:
    # A caller that sends its own validators (polling with an ETag, say) must get the
    # origin's 304 as with httpx alone, not the stored 200.
    def conditional(request: httpx.Request) -> httpx.Response:
        headers = {"cache-control": "max-age=60", "etag": '"v1"', "date": origin.date()}
        status = 304 if set(validator) & set(request.headers) else 200
        return httpx.Response(status, headers=headers, content=b"" if status == 304 else b"{}")

    origin.answer(handler=conditional)
    api = make()
    await api.get("/doc")
    answer = await api.get("/doc", headers=validator)
    assert (answer.status_code, origin.calls) == (304, 2)
    assert {name: origin.last.headers.get(name) for name in validator} == validator
    assert result(await api.get("/doc")).from_cache  # what was stored is still served


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unsafe_methods_invalidate_the_target_and_location(
    make: Make, origin: Origin, method: str
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    await api.get("/users/1")
    await api.get("/users/2")
    await api.get("/users/1", headers={"authorization": "Bearer other"})
    origin.answer(200, location="/users/2")
    await api.request(method, "/users/1")
    origin.answer(cache_control="max-age=60")
    assert not result(await api.get("/users/1")).from_cache
    assert not result(
        await api.get("/users/1", headers={"authorization": "Bearer other"})
    ).from_cache
    assert not result(await api.get("/users/2")).from_cache


async def test_failed_unsafe_method_invalidates_nothing(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    await api.get("/users/1")
    origin.answer(409)
    await api.request("DELETE", "/users/1")
    assert result(await api.get("/users/1")).from_cache


# -- request directives (per call and header) ------------------------------------------------


def cc(value: str) -> dict[str, Any]:
    return {"extensions": buttress.options(cache_control=value)}


async def test_request_no_cache_revalidates(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60", etag='"e"')
    api = make()
    await api.get("/doc")
    origin.answer(304, b"", etag='"e"')
    assert result(await api.get("/doc", **cc("no-cache"))).revalidated
    assert result(await api.get("/doc", headers={"cache-control": "no-cache"})).revalidated
    assert origin.calls == 3
    assert "cache-control" not in origin.requests[1].headers  # the option is not sent


async def test_request_no_store_does_not_store(make: Make, origin: Origin) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    assert not result(await api.get("/doc", **cc("no-store"))).stored
    assert not result(await api.get("/doc")).from_cache
    assert result(await api.get("/doc", **cc("no-store"))).from_cache


async def test_only_if_cached_answers_504_on_a_miss_without_the_origin(
    make: Make, origin: Origin
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    miss = await api.get("/doc", **cc("only-if-cached"))
    assert (miss.status_code, origin.calls) == (504, 0)
    await api.get("/doc")
    assert result(await api.get("/doc", **cc("only-if-cached"))).from_cache


async def test_request_max_age_min_fresh_and_max_stale(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=100")
    api = make()
    await api.get("/doc")
    clock.advance(50)
    assert not result(await api.get("/doc", **cc("max-age=40"))).from_cache
    clock.advance(50)  # the refetched copy is 50 s old
    assert result(await api.get("/doc", **cc("max-age=60"))).from_cache
    assert not result(await api.get("/doc", **cc("min-fresh=60"))).from_cache
    clock.advance(120)  # 20 s stale
    assert result(await api.get("/doc", **cc("max-stale=30"))).from_cache
    assert not result(await api.get("/doc", **cc("max-stale=10"))).from_cache


# -- stale-if-error --------------------------------------------------------------------------


def failing(error: Exception) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.MockTransport(handle)


async def test_stale_if_error_serves_stale_on_5xx_and_marks_it(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10")
    api = make(stale_if_error=60)
    await api.get("/doc")
    clock.advance(30)
    origin.answer(502)
    served = await api.get("/doc")
    assert served.status_code == 200
    assert result(served).stale
    assert result(served).from_cache
    clock.advance(60)  # 80 s stale: past the window
    assert (await api.get("/doc")).status_code == 502


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        buttress.CircuitBreakerOpenError("circuit open", host="api.test"),
    ],
)
async def test_stale_if_error_covers_connection_errors_and_open_circuits(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend, error: Exception
) -> None:
    origin.answer(cache_control="max-age=10")
    await make(stale_if_error=60).get("/doc")
    clock.advance(20)
    broken = make(inner=failing(error), stale_if_error=60)
    assert result(await broken.get("/doc")).stale
    clock.advance(60)
    with pytest.raises(type(error)):
        await broken.get("/doc")


async def test_stale_if_error_answers_when_the_retry_layer_stops_early(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    # The retry layer hands back a 503 whose Retry-After it will not wait for, as it
    # hands back one after its last attempt: the cache may answer both with a stale entry.
    retry = buttress.RetryConfig(retry_after_max=5, jitter="none", budget=None)
    api = make(inner=RetryTransport(origin.transport, retry, clock=clock), stale_if_error=60)
    as_the_client_sends = buttress.options(raise_for_status=True)
    origin.answer(cache_control="max-age=10")
    await api.get("/doc", extensions=as_the_client_sends)
    clock.advance(30)
    origin.answer(503, retry_after="120")
    served = await api.get("/doc", extensions=as_the_client_sends)
    assert (served.status_code, result(served).stale) == (200, True)
    assert origin.calls == 2  # one attempt: the wait asked for is past retry_after_max


async def test_origin_stale_if_error_directive_is_honoured(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10, stale-if-error=30")
    api = make()
    await api.get("/doc")
    clock.advance(20)
    origin.answer(500)
    assert result(await api.get("/doc")).stale


async def test_without_stale_if_error_failures_pass_through(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10")
    await make().get("/doc")
    clock.advance(20)
    with pytest.raises(httpx.ConnectError):
        await make(inner=failing(httpx.ConnectError("down"))).get("/doc")


# -- isolation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            {"headers": {"authorization": "Bearer alice"}},
            {"headers": {"authorization": "Bearer bob"}},
        ),
        ({"headers": {"authorization": "Bearer alice"}}, {}),
        ({}, {"headers": {"authorization": "Bearer bob"}}),
        ({"headers": {"x-api-key": "alice-key"}}, {"headers": {"x-api-key": "bob-key"}}),
        ({"params": {"api_key": "alice-key"}}, {"params": {"api_key": "bob-key"}}),
        ({"headers": {"cookie": "session=alice"}}, {"headers": {"cookie": "session=bob"}}),
        ({"headers": {"x-client-proof": "alice"}}, {"headers": {"x-client-proof": "bob"}}),
        ({"headers": {"accept-version": "2"}}, {}),
    ],
)
async def test_a_response_is_never_served_to_another_credential(
    make: Make, origin: Origin, first: dict[str, Any], second: dict[str, Any]
) -> None:
    origin.answer(cache_control="private, max-age=60")
    api = make()
    await api.get("/me", **first)
    assert result(await api.get("/me", **first)).from_cache
    assert not result(await api.get("/me", **second)).from_cache
    assert origin.calls == 2


async def test_rfc9110_7_2_virtual_hosts_on_one_address_are_kept_apart(
    make: Make, origin: Origin
) -> None:
    # The Host header names the target: one address serving two tenants must not hand
    # one tenant's stored answer to the other, and a change to one leaves the other's.
    def site(request: httpx.Request) -> httpx.Response:
        headers = {"cache-control": "max-age=60", "date": origin.date()}
        return httpx.Response(200, headers=headers, content=request.headers["host"].encode())

    origin.answer(handler=site)
    api = make()
    tenants = [{"host": "a.example"}, {"host": "B.example"}]
    assert [(await api.get("/home", headers=host)).content for host in tenants] == [
        b"a.example",
        b"B.example",
    ]
    hits = [await api.get("/home", headers=host) for host in [*tenants, {"host": "b.EXAMPLE"}]]
    assert [(hit.content, result(hit).from_cache) for hit in hits] == [
        (b"a.example", True),
        (b"B.example", True),
        (b"B.example", True),  # host names are compared without case
    ]
    await api.request("POST", "/home", headers=tenants[0])
    changed = [result(await api.get("/home", headers=host)).from_cache for host in tenants]
    assert (changed, origin.calls) == ([False, True], 4)


async def test_headers_carrying_no_credential_are_shared_unless_marked(
    make: Make, origin: Origin
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    await api.get("/doc", headers={"user-agent": "one/1.0", "x-request-id": "r-1"})
    assert result(
        await api.get("/doc", headers={"user-agent": "two/2.0", "x-request-id": "r-2"})
    ).from_cache
    marked = make(credential_headers={"User-Agent"})
    await marked.get("/marked", headers={"user-agent": "one/1.0"})
    assert not result(await marked.get("/marked", headers={"user-agent": "two/2.0"})).from_cache
    assert result(await marked.get("/marked", headers={"user-agent": "one/1.0"})).from_cache


async def test_unsafe_methods_invalidate_every_callers_secret_parameter(
    make: Make, origin: Origin
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    for caller in ("alice", "bob"):
        await api.get("/me", params={"api_key": caller, "view": "full"})
    origin.answer(204)
    await api.request("POST", "/me", params={"api_key": "alice", "view": "full"})
    origin.answer(cache_control="max-age=60")
    for caller in ("alice", "bob"):
        again = await api.get("/me", params={"api_key": caller, "view": "full"})
        assert not result(again).from_cache


async def test_credentials_are_stored_only_as_hashes(
    make: Make, origin: Origin, backend: CacheBackend, tmp_path: Path
) -> None:
    origin.answer(cache_control="max-age=60", vary="Authorization")
    api = make()
    await api.get(
        "/me",
        params={"api_key": "sekrit-param", "k": "sekrit-unknown"},
        headers={"authorization": "Bearer sekrit-token", "x-proof": "sekrit-proof"},
    )
    entries = [entry for key in _keys(backend) for entry in backend.get_entries(key)]
    assert entries
    dumped = repr([(e.request.url, e.request.headers) for e in entries])
    assert "sekrit" not in dumped
    [entry] = entries
    assert list(entry.request.headers) == ["authorization"]  # only what Vary names
    assert entry.request.url.startswith("https://api.test/me?h:")
    if isinstance(backend, DiskCache):
        for path in backend.directory.rglob("*"):
            if path.is_file():
                assert b"sekrit" not in path.read_bytes()


def _keys(backend: CacheBackend) -> list[str]:
    if isinstance(backend, MemoryCache):
        return list(backend._buckets)
    assert isinstance(backend, DiskCache)
    return [folder.name for folder in backend.directory.iterdir() if folder.is_dir()]


async def test_a_stored_response_is_read_the_same_whoever_wrote_it(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> None:
    # Entries from a shared backend, or written by an older version, come back as plain
    # headers: they answer exactly as those the layer keeps read once.
    origin.answer(cache_control="max-age=60, stale-while-revalidate=5", vary="Accept")
    api = make()
    await api.get("/doc", headers={"accept": "a"})
    clock.advance(10)
    kept = await api.get("/doc", headers={"accept": "a"})
    [key] = _keys(backend)
    for entry in backend.get_entries(key):
        plain = Headers(
            {name: entry.response.headers.get_list(name) or [] for name in entry.response.headers}
        )
        backend.update_headers(entry.id, plain)
    rebuilt = await api.get("/doc", headers={"accept": "a"})
    other = await api.get("/doc", headers={"accept": "b"})
    assert (result(kept), result(rebuilt)) == (CacheResult(True, age=10), CacheResult(True, age=10))
    assert rebuilt.headers.multi_items() == kept.headers.multi_items()
    assert (result(other).from_cache, origin.calls) == (False, 2)


async def test_a_backends_own_async_read_is_awaited_and_an_inline_one_called(
    make: Make, mode: str, origin: Origin
) -> None:
    class Counted(MemoryCache):
        def __init__(self) -> None:
            super().__init__()
            self.awaited = 0

        async def aget_entries(self, key: str) -> list[Entry]:
            self.awaited += 1
            return self.get_entries(key)

    origin.answer(cache_control="max-age=60")
    own, inline = Counted(), MemoryCache()
    for backend in (own, inline):
        api = make(backend=backend)
        await api.get("/doc")
        assert result(await api.get("/doc")).from_cache
    assert own.awaited == (2 if mode == "async" else 0)


# -- invalidation and statistics -------------------------------------------------------------


async def test_invalidate_invalidate_pattern_and_clear(
    make: Make, origin: Origin, backend: CacheBackend
) -> None:
    origin.answer(cache_control="max-age=60")
    api = make()
    for path in ("/users/1", "/users/2", "/users/2?expand=team", "/teams/1"):
        await api.get(path)
    cache = buttress.Cache(backend, base_url="https://api.test")
    assert cache.invalidate("/users/2?expand=team") == 1
    assert cache.invalidate("/users/2") == 1
    assert cache.invalidate("https://other.test/users/1") == 0
    assert cache.invalidate_pattern("/users/*") == 1
    assert backend.size == 1
    assert result(await api.get("/teams/1")).from_cache
    cache.clear()
    assert backend.size == 0
    assert not result(await api.get("/teams/1")).from_cache


async def test_stats_count_hits_misses_revalidations(
    make: Make, origin: Origin, clock: FakeClock, backend: CacheBackend
) -> None:
    origin.answer(cache_control="max-age=10", etag='"s"')
    api = make()
    await api.get("/doc")
    await api.get("/doc")
    await api.get("/doc")
    clock.advance(11)
    origin.answer(304, b"", cache_control="max-age=10", etag='"s"')
    await api.get("/doc")
    stats = backend.stats()
    assert (stats.hits, stats.misses, stats.revalidations, stats.size) == (2, 1, 1, 1)
    assert stats.hit_rate == pytest.approx(0.5)


async def test_transport_alone_under_mounts(mode: str, origin: Origin, clock: FakeClock) -> None:
    origin.answer(cache_control="max-age=60")
    transport = CacheTransport(origin.transport, CacheConfig(), clock=clock)
    mounts = {"https://api.test": transport}
    client: Any = (
        httpx.AsyncClient(mounts=mounts) if mode == "async" else httpx.Client(mounts=mounts)
    )
    caller = Plain(client)
    await caller.get("https://api.test/doc")
    assert result(await caller.get("https://api.test/doc")).from_cache
    assert transport.cache.stats().hits == 1
    await caller.aclose()


# -- RFC 9111 by default: freshness only where the RFC gives it -----------------------------

DATE = "Tue, 14 Nov 2023 22:13:20 GMT"  # the fake clock's start: 1_700_000_000
IN_AN_HOUR = "Tue, 14 Nov 2023 23:13:20 GMT"


async def test_rfc9111_4_2_a_response_without_freshness_is_not_reused_by_default(
    make: Make, origin: Origin
) -> None:
    origin.answer()  # no max-age, no Expires, no Last-Modified
    api = make()
    await api.get("/plain")
    assert not result(await api.get("/plain")).from_cache
    origin.answer(etag='"e"')
    await api.get("/tagged")
    origin.answer(304, b"", etag='"e"')
    assert result(await api.get("/tagged")).revalidated
    assert origin.last.headers["if-none-match"] == '"e"'


async def test_rfc9111_4_2_2_heuristic_freshness_is_capped_at_a_day(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(last_modified=origin.date(-100 * 86_400))  # 10% would be ten days
    api = make()
    await api.get("/old")
    clock.advance(86_399)
    assert result(await api.get("/old")).from_cache
    clock.advance(2)
    assert not result(await api.get("/old")).from_cache


@pytest.mark.parametrize(("status", "reused"), [(200, True), (404, True), (302, False)])
async def test_rfc9111_4_2_2_heuristic_freshness_only_for_heuristically_cacheable_statuses(
    make: Make, origin: Origin, status: int, reused: bool
) -> None:
    origin.answer(status, last_modified=origin.date(-1000))
    api = make()
    await api.get("/h")
    assert result(await api.get("/h")).from_cache is reused


@pytest.mark.parametrize(
    "expires",
    [
        IN_AN_HOUR,  # IMF-fixdate
        "Tuesday, 14-Nov-23 23:13:20 GMT",  # obsolete RFC 850
        "Tue Nov 14 23:13:20 2023",  # obsolete asctime
    ],
)
async def test_rfc9111_5_3_expires_in_each_http_date_format(
    make: Make, origin: Origin, clock: FakeClock, expires: str
) -> None:
    origin.answer(date=DATE, expires=expires)
    api = make()
    await api.get("/e")
    clock.advance(3599)
    assert result(await api.get("/e")).from_cache
    clock.advance(2)
    assert not result(await api.get("/e")).from_cache


@pytest.mark.parametrize(
    "expires",
    [
        "Tue, 14 Nov 2023 23:13:20 UTC",  # a zone other than GMT
        "Tue, 14 Nov 2023 23:13:20 +1000",
        "Tue, 14 Nov 23 23:13:20 GMT",  # a two-digit year in IMF-fixdate
        "Tue 14 Nov 2023 23:13:20 GMT",  # no comma
        "Tue,  14 Nov 2023 23:13:20 GMT",  # extra space
        "Tue, 14-Nov-2023 23:13:20 GMT",  # dashes in IMF-fixdate
        "Tue, 14 Nov 2023 23.13.20 GMT",  # periods in the time
        "Tue, 14 Nov 2023 3:13:20 GMT",  # a one-digit hour
        "tue, 14 nov 2023 23:13:20 gmt",  # HTTP-date is case-sensitive
        "Tue, 31 Nov 2023 23:13:20 GMT",  # no such day
        "0",
    ],
)
async def test_rfc9111_5_3_invalid_expires_is_stale(
    make: Make, origin: Origin, expires: str
) -> None:
    origin.answer(date=DATE, expires=expires)
    api = make(default_ttl=600)  # an invalid Expires is not "no freshness information"
    await api.get("/e")
    assert not result(await api.get("/e")).from_cache


async def test_rfc9111_5_3_several_expires_lines_are_invalid(make: Make, origin: Origin) -> None:
    def twice(request: httpx.Request) -> httpx.Response:
        headers = [("date", DATE), ("expires", IN_AN_HOUR), ("expires", IN_AN_HOUR)]
        return httpx.Response(200, headers=headers, content=b"{}")

    origin.answer(handler=twice)
    api = make()
    await api.get("/e")
    assert not result(await api.get("/e")).from_cache


# -- RFC 5861 stale-while-revalidate ----------------------------------------------------------


async def revalidated_in_background(api: Plain, answered: threading.Event) -> None:
    """Wait for the background revalidation to reach the origin and finish.

    The 5 s bound only guards against a hang; closing the client waits for the
    sync worker, and the async task has no await left once the origin answered.
    """
    if api.is_async:
        with anyio.fail_after(5):
            while not answered.is_set():
                await anyio.sleep(0)  # let the revalidation task run
    else:
        assert answered.wait(5)
    await api.aclose()


async def test_rfc5861_3_stale_while_revalidate_serves_stale_and_revalidates_in_background(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10, stale-while-revalidate=60", etag='"v1"')
    api = make()
    await api.get("/doc")
    clock.advance(30)
    answered = threading.Event()

    def changed(request: httpx.Request) -> httpx.Response:
        answered.set()
        headers = {"cache-control": "max-age=10, stale-while-revalidate=60", "etag": '"v2"'}
        return httpx.Response(200, headers=headers, content=b'{"v": 2}')

    origin.answer(handler=changed)
    stale = await api.get("/doc")
    assert stale.json() == {"v": 1}
    assert result(stale) == CacheResult(True, age=30, stale=True, revalidating=True)
    await revalidated_in_background(api, answered)
    assert origin.last.headers["if-none-match"] == '"v1"'
    fresh = await make().get("/doc")
    assert (fresh.json(), result(fresh).from_cache, origin.calls) == ({"v": 2}, True, 2)


async def test_rfc5861_3_past_the_window_the_origin_answers_first(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10, stale-while-revalidate=60")
    api = make()
    await api.get("/doc")
    clock.advance(71)
    origin.answer(body=b'{"v": 2}', cache_control="max-age=10")
    response = await api.get("/doc")
    assert (response.json(), result(response).from_cache) == ({"v": 2}, False)


async def test_rfc9111_5_2_1_7_only_if_cached_never_revalidates_in_the_background(
    make: Make, origin: Origin, clock: FakeClock
) -> None:
    origin.answer(cache_control="max-age=10, stale-while-revalidate=60")
    api = make()
    await api.get("/doc")
    clock.advance(30)  # stale, inside the window: a plain request would revalidate meanwhile
    refused = await api.get("/doc", **cc("only-if-cached"))
    assert (refused.status_code, result(refused).from_cache) == (504, False)
    allowed = await api.get("/doc", **cc("only-if-cached, max-stale=60"))
    assert (result(allowed).from_cache, result(allowed).revalidating) == (True, False)
    await api.aclose()  # waits for any background revalidation
    assert origin.calls == 1


@pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "no-cache"])
async def test_rfc5861_stale_while_revalidate_never_serves_what_must_be_validated(
    make: Make, origin: Origin, clock: FakeClock, directive: str
) -> None:
    origin.answer(cache_control=f"max-age=10, stale-while-revalidate=60, {directive}")
    api = make()
    await api.get("/doc")
    clock.advance(20)
    origin.answer(body=b'{"v": 2}', cache_control="max-age=10")
    response = await api.get("/doc")
    assert (response.json(), result(response).stale, origin.calls) == ({"v": 2}, False, 2)


async def end(api: Plain, how: str) -> None:
    """Close the client, or leave its ``with`` block (which reaches the transport's exit)."""
    if how == "close":
        await api.aclose()
    elif isinstance(api.client, httpx.AsyncClient):
        await api.client.__aexit__(None, None, None)
    else:
        api.client.__exit__(None, None, None)


@pytest.mark.parametrize("how", ["close", "exit"])
async def test_rfc5861_a_closed_client_stops_its_revalidations(
    make: Make, origin: Origin, clock: FakeClock, how: str
) -> None:
    origin.answer(cache_control="max-age=10, stale-while-revalidate=60")
    api = make()
    await api.get("/doc")
    clock.advance(20)
    reached, release, stopped = threading.Event(), threading.Event(), threading.Event()

    def held(request: httpx.Request) -> httpx.Response:
        reached.set()
        release.wait(5)
        return httpx.Response(200, content=b"{}")

    async def held_async(request: httpx.Request) -> httpx.Response:
        reached.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    origin.answer(handler=held_async if api.is_async else held)  # type: ignore[arg-type]
    assert result(await api.get("/doc")).revalidating
    if api.is_async:
        with anyio.fail_after(5):
            while not reached.is_set():
                await anyio.sleep(0)
        await end(api, how)
        assert stopped.is_set()  # cancelled, not left running
    else:
        assert reached.wait(5)
        release.set()
        await end(api, how)  # waits for the request in flight
        assert not [t for t in threading.enumerate() if t.name.startswith("buttress-revalidate")]
