"""Age and freshness arithmetic (RFC 9111 4.2), by hand: no I/O, no clock."""

from __future__ import annotations

import pytest
from hishel import Headers

from buttress.policies.cache import (
    RequestDirectives,
    current_age,
    freshness_lifetime,
    initial_age,
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
