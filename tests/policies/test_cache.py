"""Age and freshness arithmetic (RFC 9111 4.2), by hand: no I/O, no clock."""

from __future__ import annotations

import pytest
from hishel import Headers, Request, Response

from buttress.policies.cache import (
    CacheControl,
    RequestDirectives,
    cache_control,
    conditional_request,
    current_age,
    freshness_lifetime,
    initial_age,
    parse_http_date,
)

DATE = "Tue, 14 Nov 2023 22:13:20 GMT"  # 1_700_000_000


def lifetime(ttl: float | None = 300.0, /, **headers: str) -> float | None:
    return freshness_lifetime(
        Headers({k.replace("_", "-"): v for k, v in headers.items()}),
        response_time=1_700_000_000.0,
        default_ttl=ttl,
    )


def test_initial_age_is_the_larger_of_apparent_and_corrected_age() -> None:
    headers = Headers({"date": DATE, "age": "5"})
    assert initial_age(headers, request_time=1_700_000_009.0, response_time=1_700_000_010.0) == 10.0
    headers = Headers({"date": DATE, "age": "30"})
    assert initial_age(headers, request_time=1_700_000_009.0, response_time=1_700_000_010.0) == 31.0


def test_a_date_in_the_future_does_not_make_age_negative() -> None:
    headers = Headers({"date": DATE})
    assert initial_age(headers, request_time=1_699_999_000.0, response_time=1_699_999_000.0) == 0.0


def test_current_age_grows_with_resident_time() -> None:
    assert current_age(10.0, response_time=100.0, now=160.0) == 70.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache_control": "max-age=60", "expires": "0"}, 60.0),
        ({"cache_control": "s-maxage=600"}, 300.0),
        ({"expires": "Tue, 14 Nov 2023 22:14:20 GMT", "date": DATE}, 60.0),
        ({"expires": "Tue, 14 Nov 2023 22:14:20 GMT"}, 60.0),
        ({"expires": "not a date"}, 0.0),
        ({}, 300.0),
    ],
)
def test_freshness_lifetime(headers: dict[str, str], expected: float) -> None:
    assert lifetime(**headers) == expected


def test_heuristic_freshness_when_default_ttl_is_none() -> None:
    assert lifetime(None, date=DATE, last_modified="Tue, 14 Nov 2023 22:00:00 GMT") == 80.0
    assert lifetime(None) is None


def test_request_directives_combine_header_and_option() -> None:
    directives = RequestDirectives.parse("max-age=5", None, "max-stale, min-fresh=3")
    assert (directives.max_age, directives.min_fresh) == (5, 3)
    assert directives.max_stale is not None
    assert RequestDirectives.parse(None, None) == RequestDirectives()


NOW = 1_700_000_000.0  # 2023


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777.0),
        ("Sun Nov  6 08:49:37 1994", 784_111_777.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800.0),  # a leap second
    ],
)
def test_rfc9110_5_6_7_the_three_http_date_formats(value: str, expected: float) -> None:
    assert parse_http_date(value, now=NOW) == expected


def test_rfc9110_5_6_7_a_two_digit_year_is_never_more_than_50_years_ahead() -> None:
    assert parse_http_date("Tuesday, 01-Jan-80 00:00:00 GMT", now=NOW) == 315_532_800.0  # 1980
    later = parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT", now=NOW)
    assert later == 3_155_760_000.0  # 2070: within 50 years of 2023


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994  08:49:37 GMT",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08.49.37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 29 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, \uff10\uff16 Nov 1994 08:49:37 GMT",  # full-width digits
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "",
    ],
)
def test_rfc9110_5_6_7_anything_else_is_not_a_date(value: str) -> None:
    assert parse_http_date(value, now=NOW) is None


@pytest.mark.parametrize(
    ("status", "cache_control", "expected"),
    [(200, None, 80.0), (404, None, 80.0), (302, None, None), (302, "public", 80.0)],
)
def test_rfc9111_4_2_2_heuristic_freshness_only_for_heuristically_cacheable_responses(
    status: int, cache_control: str | None, expected: float | None
) -> None:
    headers = Headers({"date": DATE, "last-modified": "Tue, 14 Nov 2023 22:00:00 GMT"})
    if cache_control is not None:
        headers["cache-control"] = cache_control
    lifetime = freshness_lifetime(
        headers, response_time=1_700_000_000.0, default_ttl=None, status_code=status
    )
    assert lifetime == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, CacheControl()),
        ("", CacheControl()),
        ("max-age=60", CacheControl(max_age=60)),
        ("MAX-AGE = 60 ,Public", CacheControl(max_age=60, public=True)),
        ('max-age="60"', CacheControl(max_age=60)),
        ("max-age=60, max-age=5", CacheControl(max_age=5)),  # the last one counts
        ("max-age=-1", CacheControl()),
        ("max-age=1e3", CacheControl()),
        ("max-age=", CacheControl()),
        ("max-age=99999999999", CacheControl(max_age=2**31)),  # RFC 9111 1.2.2
        ("max-stale", CacheControl(max_stale=2**31)),
        ("max-stale=30, min-fresh=5", CacheControl(max_stale=30, min_fresh=5)),
        ("no-cache", CacheControl(no_cache=True)),
        ('no-cache="Set-Cookie, X-Token"', CacheControl(no_cache=("set-cookie", "x-token"))),
        ('no-cache=""', CacheControl(no_cache=True)),
        ("no-store, only-if-cached", CacheControl(no_store=True, only_if_cached=True)),
        (
            "must-revalidate, proxy-revalidate",
            CacheControl(must_revalidate=True, proxy_revalidate=True),
        ),
        (
            "stale-while-revalidate=30, stale-if-error=600",
            CacheControl(stale_while_revalidate=30, stale_if_error=600),
        ),
        ('private, community="UCI, x", max-age=9', CacheControl(max_age=9)),  # commas in quotes
        ('ext="a \\" max-age=1", max-age=2', CacheControl(max_age=2)),  # escaped quote
        (";;, , max-age=3", CacheControl(max_age=3)),
    ],
)
def test_rfc9111_5_2_cache_control_directives(value: str | None, expected: CacheControl) -> None:
    assert cache_control(value) == expected


def test_rfc9111_4_3_1_a_conditional_request_carries_the_stored_validators() -> None:
    request = Request("GET", "https://example.com/a", Headers({"accept": ["a", "b"]}))
    stored = Response(
        200, Headers({"etag": '"v1"', "last-modified": DATE, "cache-control": "max-age=1"})
    )
    conditional = conditional_request(request, stored)
    assert conditional.headers.get_list("if-none-match") == ['"v1"']
    assert conditional.headers.get_list("if-modified-since") == [DATE]
    assert conditional.headers.get_list("accept") == ["a", "b"]
    assert (conditional.method, conditional.url) == (request.method, request.url)
    assert "if-none-match" not in request.headers  # the stored request is left as it was


def test_without_validators_the_request_is_sent_as_it_was() -> None:
    request = Request("GET", "https://example.com/a", Headers({"if-none-match": '"mine"'}))
    conditional = conditional_request(request, Response(200, Headers({})))
    assert dict(conditional.headers) == {"if-none-match": '"mine"'}
