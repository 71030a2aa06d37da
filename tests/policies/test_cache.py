"""Age and freshness arithmetic (RFC 9111 4.2), by hand: no I/O, no clock."""

from __future__ import annotations

import pytest
from hishel import Headers

from buttress.policies.cache import (
    RequestDirectives,
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
