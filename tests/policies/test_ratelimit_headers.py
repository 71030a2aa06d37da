"""Every rate-limit header format, and malformed values ignored with a DEBUG log."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.policies.headers import (
    RateLimitInfo,
    parse_rate_limit,
    parse_retry_after,
    rate_limit_headers,
)

NOW = 1_700_000_000.0


def parse(headers: dict[str, str]) -> RateLimitInfo | None:
    return parse_rate_limit(httpx.Headers(headers), NOW)


def test_no_rate_limit_headers_gives_none() -> None:
    assert parse({"content-type": "application/json"}) is None


def test_x_ratelimit_with_reset_as_a_delay() -> None:
    info = parse(
        {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    )
    assert info == RateLimitInfo(
        limit=60,
        remaining=0,
        reset_after=30.0,
        reset_at=datetime.fromtimestamp(NOW + 30, tz=timezone.utc),
    )
    assert info.exhausted


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        (str(int(NOW) + 90), 90.0),  # epoch seconds (GitHub, Twitter)
        (str(int(NOW) * 1000 + 1500), 1.5),  # epoch milliseconds
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),  # an HTTP-date (NOW is 22:13:20)
        ("12.5", 12.5),  # a delay
        (str(int(NOW) - 10), 0.0),  # a moment already past
    ],
)
def test_reset_forms_are_told_apart(reset: str, expected: float) -> None:
    info = parse({"X-RateLimit-Reset": reset})
    assert info is not None
    assert info.reset_after == pytest.approx(expected)


def test_github_headers_with_used_and_resource() -> None:
    info = parse(
        {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4987",
            "x-ratelimit-used": "13",
            "x-ratelimit-reset": str(int(NOW) + 600),
            "x-ratelimit-resource": "core",
        }
    )
    assert info is not None
    assert (info.limit, info.remaining, info.used, info.policy) == (5000, 4987, 13, "core")
    assert info.reset_at == datetime.fromtimestamp(NOW + 600, tz=timezone.utc)


def test_older_ratelimit_trio() -> None:
    info = parse({"RateLimit-Limit": "100", "RateLimit-Remaining": "42", "RateLimit-Reset": "17"})
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after) == (100, 42, 17.0)


def test_older_ratelimit_limit_with_a_policy_suffix() -> None:
    info = parse({"RateLimit-Limit": "100, 100;w=60"})
    assert info is not None
    assert info.limit == 100


def test_ietf_structured_fields() -> None:
    info = parse({"RateLimit": '"default";r=3;t=10', "RateLimit-Policy": '"default";q=100;w=60'})
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after, info.window, info.policy) == (
        100,
        3,
        10.0,
        60.0,
        "default",
    )


def test_ietf_several_policies_the_tightest_counts() -> None:
    info = parse(
        {
            "RateLimit": '"day";r=900;t=40000, "burst";r=1;t=2',
            "RateLimit-Policy": '"burst";q=5;w=3, "day";q=1000;w=86400',
        }
    )
    assert info is not None
    assert (info.policy, info.limit, info.remaining, info.reset_after, info.window) == (
        "burst",
        5,
        1,
        2.0,
        3.0,
    )


def test_ietf_draft_7_dictionary_form() -> None:
    info = parse({"RateLimit": "limit=100, remaining=50, reset=5", "RateLimit-Policy": "100;w=60"})
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after, info.window) == (100, 50, 5.0, 60.0)


def test_the_most_specific_format_wins_field_by_field() -> None:
    info = parse(
        {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "9",
            "X-RateLimit-Used": "1",
            "RateLimit": '"p";r=4;t=8',
        }
    )
    assert info is not None
    assert (info.limit, info.remaining, info.used, info.reset_after) == (10, 4, 1, 8.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "lots"},
        {"X-RateLimit-Reset": "soon"},
        {"X-RateLimit-Reset": "-5"},
        {"X-RateLimit-Reset": "nan"},
        {"RateLimit": 'garbage ;;; "'},
        {"RateLimit": '"p";r=x;t=y'},
        {"RateLimit-Policy": "=,="},
        {"RateLimit": "limit=a, remaining=b"},
    ],
)
def test_malformed_values_are_ignored_with_a_debug_log(
    headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="buttress.headers"):
        info = parse(headers)
    assert info is None or (info.remaining is None and info.reset_after is None)


@pytest.mark.parametrize("reset", ["inf", "Infinity", "1e999", "1e3", "1_000", "+30", "-30"])
def test_a_reset_that_is_not_plain_digits_holds_nothing(reset: str) -> None:
    # float() takes these, and a host was then held for max_server_pause.
    prefixed = parse({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    ietf = parse({"RateLimit": f'"default";r=0;t={reset}'})
    assert prefixed is not None
    assert ietf is not None
    assert (prefixed.remaining, prefixed.reset_after) == (0, None)
    assert (ietf.remaining, ietf.reset_after) == (0, None)


def test_a_malformed_header_leaves_the_others_usable(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="buttress.headers"):
        info = parse({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "oops"})
    assert info is not None
    assert (info.limit, info.remaining) == (60, None)
    assert "X-RateLimit-Remaining" in caplog.text or "x-ratelimit-remaining" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit": f'"default";r={"9" * 400};t=30'},
        {"RateLimit-Policy": f'"default";q=1;w={"9" * 400}'},
        {"RateLimit": f"limit={'9' * 400}, remaining=1, reset=1"},
        {"X-RateLimit-Remaining": "9" * 5000},
        {"X-RateLimit-Limit": "9" * 19},
    ],
    ids=["r", "w", "draft 7", "5,000 digits", "19 digits"],
)
def test_a_number_too_big_to_mean_anything_is_ignored(headers: dict[str, str]) -> None:
    info = parse_rate_limit(httpx.Headers(headers), NOW)  # neither raises nor keeps it
    assert info is None or all(
        value is None or value < 10**18 for value in (info.limit, info.remaining, info.window)
    )


def test_twitters_spelling_is_understood() -> None:
    info = parse(
        {
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": "1700000060",
        }
    )
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after) == (900, 0, 60.0)


def test_retry_after_both_forms() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "7"}), NOW) == 7.0
    date = httpx.Headers({"Retry-After": "Tue, 14 Nov 2023 22:13:50 GMT"})
    assert parse_retry_after(date, NOW) == 30.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "whenever"}), NOW) is None


_NAMES = [
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Used",
    "X-RateLimit-Resource",
    "X-Rate-Limit-Remaining",
    "Retry-After",
]
_HUGE = st.integers(min_value=300, max_value=5_000).map(lambda digits: "9" * digits)
_VALUES = (
    st.text(alphabet=st.sampled_from('0123456789.-;,=" abqrtwlimnx'), max_size=40)
    | st.from_regex(r'"[a-z]{1,5}";r=-?[0-9]{1,12};t=[0-9]{1,12}', fullmatch=True)
    | _HUGE
    | _HUGE.map(lambda number: f'"default";r={number};t=30')
    | _HUGE.map(lambda number: f'"default";q={number};w={number}')
    | _HUGE.map(lambda number: f"limit={number}, remaining={number}, reset={number}")
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(_NAMES), _VALUES, max_size=5))
def test_parsers_never_raise(headers: dict[str, str]) -> None:
    parsed = httpx.Headers(headers)
    info = parse_rate_limit(parsed, NOW)
    assert info is None or isinstance(info, RateLimitInfo)
    parse_retry_after(parsed, NOW)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("X-RateLimit-Remaining", True),
        ("x-rate-limit-reset", True),
        ("RateLimit-Policy", True),
        ("ratelimit", True),
        ("Retry-After", False),
        ("X-Request-Id", False),
        ("Content-Type", False),
        ("X-Custom-RateLimit", False),  # no format starts so
    ],
)
def test_only_the_names_of_a_known_format_are_read(name: str, expected: bool) -> None:
    headers = httpx.Headers({"Content-Length": "0", name: "1"})
    assert rate_limit_headers(headers) == ({name.lower(): "1"} if expected else {})
    if not expected:
        assert parse_rate_limit(headers, NOW) is None


def test_a_header_sent_twice_is_read_as_httpx_joins_it() -> None:
    headers = httpx.Headers([("X-RateLimit-Limit", "100"), ("x-ratelimit-limit", "60")])
    assert rate_limit_headers(headers) == {"x-ratelimit-limit": headers["x-ratelimit-limit"]}
    info = parse_rate_limit(headers, NOW)
    assert info is not None
    assert info.limit == 100  # the first number counts, as before


_SPELLINGS = st.sampled_from(_NAMES).flatmap(
    lambda name: st.sampled_from([name, name.lower(), name.upper()])
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(_SPELLINGS | st.sampled_from(["Age", "X-Request-Id"]), st.text(max_size=12)),
        max_size=6,
    )
)
def test_each_header_found_reads_as_httpx_reads_it(pairs: list[tuple[str, str]]) -> None:
    encoded = [(name.encode(), value.encode("utf-8", "surrogatepass")) for name, value in pairs]
    headers = httpx.Headers(encoded)
    found = rate_limit_headers(headers)
    for name in _NAMES:
        if name != "Retry-After":
            assert found.get(name.lower()) == headers.get(name)
    assert set(found) <= {name.lower() for name in _NAMES}
