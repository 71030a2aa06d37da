"""Property-based tests for every parser of untrusted input, one section per parser.

Each section states what must hold for *well-formed* input (round trips,
monotonicity, what is kept and what is hidden); test_parsers_fuzz.py throws
hostile input at the same parsers. The parsers of the layers still to come get
a section here (and in the fuzz file) when they land: rate-limit headers, Link,
Cache-Control, SSE. Stateful tests of the breaker and the token bucket go in
test_stateful.py beside this file.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import buttress
from buttress import Response, default_error_parser
from buttress._redact import REDACTED, redact_headers, redact_url
from buttress.policies.headers import parse_retry_after

from .strategies import (
    SENSITIVE_HEADER_NAMES,
    SENSITIVE_PARAM_NAMES,
    epoch_seconds,
    http_dates,
    json_values,
    secrets,
    url_safe_text,
)

YEAR = 365 * 24 * 3600.0

# -- Retry-After (policies/headers.py) ---------------------------------------------------------


def _retry_after(value: str, now: float = 0.0, name: str = "Retry-After") -> float | None:
    return parse_retry_after(httpx.Headers({name: value}), now)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["", " ", "\t"]))
def test_retry_after_delta_seconds_round_trip(seconds: int, padding: str) -> None:
    assert _retry_after(f"{padding}{seconds}{padding}") == min(float(seconds), YEAR)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**6))
def test_retry_after_ms_is_milliseconds_and_wins(milliseconds: int, seconds: int) -> None:
    headers = httpx.Headers({"Retry-After": str(seconds), "Retry-After-Ms": str(milliseconds)})
    assert parse_retry_after(headers, now=0) == pytest.approx(min(milliseconds, YEAR) / 1000)


@given(http_dates, epoch_seconds)
def test_retry_after_http_date_is_measured_from_now(moment: datetime, now: float) -> None:
    expected = min(max(0.0, moment.timestamp() - now), YEAR)
    assert _retry_after(format_datetime(moment, usegmt=True), now) == pytest.approx(expected)


@given(http_dates, http_dates, epoch_seconds)
def test_retry_after_later_date_never_means_a_shorter_wait(
    first: datetime, second: datetime, now: float
) -> None:
    early, late = sorted([first, second])
    wait_early = _retry_after(format_datetime(early, usegmt=True), now)
    wait_late = _retry_after(format_datetime(late, usegmt=True), now)
    assert wait_early is not None
    assert wait_late is not None
    assert wait_early <= wait_late


@given(st.floats(max_value=-1e-9) | st.just(float("nan")))
@example(-1.0)
def test_retry_after_negative_or_nan_is_ignored(value: float) -> None:
    assert _retry_after(repr(value)) is None
    assert _retry_after(repr(value), name="Retry-After-Ms") is None


# -- redaction (_redact.py) --------------------------------------------------------------------


@given(
    secret=secrets,
    password=secrets,
    name=st.sampled_from(SENSITIVE_PARAM_NAMES),
    others=st.lists(st.tuples(url_safe_text, url_safe_text), max_size=3),
    fragment=st.none() | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
)
def test_redacted_url_hides_secrets_and_keeps_everything_else(
    secret: str,
    password: str,
    name: str,
    others: list[tuple[str, str]],
    fragment: str | None,
) -> None:
    others = [(key, value) for key, value in others if not _looks_secret(key)]
    url = httpx.URL(
        f"https://ada:{quote(password, safe='')}@api.example.com:8443/v1/items",
        params=[(name, secret), *others],
        fragment=fragment,
    )
    text = redact_url(url)
    assert "S3CR3T" not in text
    assert "S3CR3T" not in httpx.URL(text).query.decode()
    redacted = httpx.URL(text)
    assert (redacted.username, redacted.host, redacted.port) == ("ada", "api.example.com", 8443)
    assert redacted.path == "/v1/items"
    assert redacted.fragment == url.fragment
    assert redacted.params.get(name) == REDACTED
    kept = [(k, v) for k, v in redacted.params.multi_items() if k != name]
    assert kept == [(k, v) for k, v in url.params.multi_items() if k != name]


def _looks_secret(name: str) -> bool:
    from buttress._redact import is_sensitive_param

    return is_sensitive_param(name) or "S3CR3T" in name


@given(url_safe_text, url_safe_text, st.sampled_from(SENSITIVE_PARAM_NAMES))
def test_redact_url_is_idempotent(path: str, secret: str, name: str) -> None:
    url = httpx.URL(f"https://u:p@api.example.com/{quote(path)}", params={name: secret})
    once = redact_url(url)
    assert redact_url(once) == once


@given(
    st.lists(
        st.tuples(
            st.sampled_from(SENSITIVE_HEADER_NAMES) | st.sampled_from(["Accept", "X-Trace"]),
            secrets,
        ),
        max_size=6,
    )
)
def test_redact_headers_hides_credentials_and_keeps_the_rest(pairs: list[tuple[str, str]]) -> None:
    redacted = redact_headers(pairs)
    for name, _value in pairs:
        if name in SENSITIVE_HEADER_NAMES:
            assert redacted[name] == REDACTED
        else:
            assert redacted[name] == dict(pairs)[name]
    assert list(redacted) == list(dict(pairs))


# -- Response.json (_response.py) ---------------------------------------------------------------


@given(json_values, st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-16-le"]))
def test_json_round_trips_any_document_in_any_unicode_encoding(value: Any, encoding: str) -> None:
    body = json.dumps(value).encode(encoding)
    headers = {"content-type": f"application/json; charset={encoding}"}
    assert Response(200, content=body, headers=headers).json() == value


@given(json_values.map(json.dumps), st.integers(min_value=0, max_value=3))
def test_json_error_points_into_the_body(document: str, cut: int) -> None:
    body = (document + "}" * (cut + 1)).encode()  # a valid document, then junk
    with pytest.raises(buttress.InvalidJSONError) as caught:
        Response(422, content=body).json()
    error = caught.value
    assert 0 <= error.pos <= len(error.doc)
    assert error.status_code == 422
    assert isinstance(error, json.JSONDecodeError)


# -- the default error parser (_response.py) ----------------------------------------------------

_SHAPES = [
    lambda m: {"error": {"message": m}},
    lambda m: {"error": m},
    lambda m: {"message": m, "code": 7},
    lambda m: {"detail": m},
    lambda m: {"detail": [{"msg": m, "loc": ["body"]}]},
    lambda m: {"errors": [{"message": m}]},
    lambda m: {"error_description": m, "error": ""},
    lambda m: [{"message": m}],
]


@given(st.text(min_size=1).filter(str.strip), st.sampled_from(_SHAPES))
def test_error_parser_finds_the_message_in_the_usual_shapes(message: str, shape: Any) -> None:
    body = shape(message)
    parsed = default_error_parser(httpx.Response(400, json=body))
    assert parsed == (message[:500], body)


@given(st.text(min_size=1).filter(lambda text: text.strip() and _not_json(text)))
def test_error_parser_reads_a_text_body(text: str) -> None:
    parsed = default_error_parser(httpx.Response(502, text=text))
    assert parsed == (text.strip()[:200], None)


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False
