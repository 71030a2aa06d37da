"""Hostile input for every parser of untrusted input: only documented outcomes, in bounded time.

Very long values, odd encodings and nonsense numbers, as a broken or malicious
server might send them. Each parser must return, or raise only what it
documents, and each input is bounded in time by hypothesis's ``deadline`` (a
generous bound that catches quadratic or worse blow-ups, not a speed test).
The second half holds the regression tests for the defects these fuzzers found,
each named after what it caught.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import hishel
import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import buttress
from buttress import Response, default_error_parser
from buttress._redact import REDACTED, redact_headers, redact_url
from buttress._response import raise_for_status
from buttress.policies.cache import RequestDirectives, cache_control, freshness_lifetime
from buttress.policies.headers import parse_retry_after
from buttress.streaming import MAX_EVENT_SIZE, iter_sse

from .strategies import hostile_bytes, hostile_text, nonsense_numbers, very_long_text

YEAR = 365 * 24 * 3600.0
BOUNDED = settings(deadline=timedelta(seconds=2), max_examples=150)

content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-16",
        "application/json; charset=utf-32",
        "text/plain; charset=latin-1",
        "text/plain; charset=utf-7",
        "text/plain; charset=no-such-codec",
        "application/json; charset=" + "x" * 5000,
    ]
)

# -- Retry-After ---------------------------------------------------------------------------------


@BOUNDED
@given(hostile_bytes, st.sampled_from([b"Retry-After", b"Retry-After-Ms"]), st.floats())
def test_retry_after_is_total_and_bounded(value: bytes, name: bytes, now: float) -> None:
    wait = parse_retry_after(httpx.Headers([(name, value)]), now)
    assert wait is None or 0.0 <= wait <= YEAR


@BOUNDED
@given(nonsense_numbers)
def test_retry_after_nonsense_numbers_are_ignored_or_clamped(value: str) -> None:
    wait = parse_retry_after(httpx.Headers([(b"Retry-After", value.encode())]), 0.0)
    assert wait is None or 0.0 <= wait <= YEAR


# -- redaction -----------------------------------------------------------------------------------


@BOUNDED
@given(hostile_text)
def test_redact_url_raises_only_invalid_url(text: str) -> None:
    try:
        redacted = redact_url(text)
    except httpx.InvalidURL:  # what httpx.URL(text) raises: documented by httpx
        return
    assert isinstance(redacted, str)


@BOUNDED
@given(very_long_text | hostile_text)
def test_redact_url_hides_a_hostile_secret(secret: str) -> None:
    try:
        url = httpx.URL("https://api.example.com/x", params={"token": "S3CR3T" + secret})
    except httpx.InvalidURL:  # longer than httpx allows a URL to be: nothing to redact
        assume(False)
    assert "S3CR3T" not in redact_url(url)


@BOUNDED
@given(st.lists(st.tuples(hostile_text, hostile_text), max_size=5))
def test_redact_headers_is_total(pairs: list[tuple[str, str]]) -> None:
    redacted = redact_headers([*pairs, ("Authorization", "S3CR3T")])
    assert redacted["Authorization"] == REDACTED


# -- Response.json and the error parser ----------------------------------------------------------


def _response(status: int, body: bytes, content_type: str | None, **headers: bytes) -> Response:
    """A response as read off the wire: header values are bytes, whatever they hold."""
    if content_type is not None:
        headers["content-type"] = content_type.encode()
    request = httpx.Request("GET", "https://api.example.com/x?api_key=S3CR3T")
    raw = [(name.encode(), value) for name, value in headers.items()]
    return Response(status, content=body, headers=raw, request=request)


@BOUNDED
@given(hostile_bytes, content_types)
def test_json_returns_a_value_or_raises_invalid_json_error(
    body: bytes, content_type: str | None
) -> None:
    response = _response(200, body, content_type)
    try:
        response.json()
    except buttress.InvalidJSONError as error:
        caught: buttress.InvalidJSONError | None = error
    else:
        caught = None
    assert caught is None or 0 <= caught.pos <= len(caught.doc)


@BOUNDED
@given(hostile_bytes, content_types, st.integers(min_value=400, max_value=599))
def test_error_parser_is_total(body: bytes, content_type: str | None, status: int) -> None:
    parsed = default_error_parser(_response(status, body, content_type))
    if parsed is not None:
        message, _details = parsed
        assert isinstance(message, str)
        assert len(message) <= 500


@BOUNDED
@given(hostile_bytes, content_types, hostile_text, st.integers(min_value=400, max_value=599))
def test_error_status_always_raises_its_buttress_error(
    body: bytes, content_type: str | None, retry_after: str, status: int
) -> None:
    value = retry_after.encode("utf-8", "surrogatepass")
    response = _response(status, body, content_type, retry_after=value)
    with pytest.raises(buttress.HTTPError) as caught:
        raise_for_status(response)
    assert caught.value.status_code == status
    assert "S3CR3T" not in str(caught.value)
    assert caught.value.retry_after is None or 0 <= caught.value.retry_after <= YEAR


# -- Cache-Control -------------------------------------------------------------------------------

MAX_SECONDS = 2**31 - 1


@BOUNDED
@given(hostile_text)
def test_cache_control_is_total_and_bounded(value: str) -> None:
    parsed = cache_control(value)
    for seconds in (parsed.max_age, parsed.stale_if_error, parsed.max_stale):
        assert seconds is None or 0 <= seconds <= MAX_SECONDS
    directives = RequestDirectives.parse(value, value)
    assert directives.min_fresh is None or 0 <= directives.min_fresh <= MAX_SECONDS
    headers = hishel.Headers({"cache-control": value})
    lifetime = freshness_lifetime(headers, response_time=0.0, default_ttl=None)
    assert lifetime is None or 0.0 <= lifetime <= 2**31


# -- server-sent events ----------------------------------------------------------------------------


def _event_stream(chunks: list[bytes], content_type: str = "text/event-stream") -> httpx.Response:
    return httpx.Response(200, headers={"content-type": content_type}, content=iter(chunks))


@BOUNDED
@given(st.lists(hostile_bytes | st.sampled_from([b"\r", b"\n", b"data:", b"id:\x00"]), max_size=8))
def test_sse_reads_any_bytes_without_raising(chunks: list[bytes]) -> None:
    """Any bytes decode to events, or (a line or event past the bound) to our size error."""
    try:
        for event in iter_sse(_event_stream(chunks)):
            assert isinstance(event.data, str)
            assert isinstance(event.event, str)
            assert "\x00" not in event.id
    except buttress.ResponseTooLargeError:
        assert sum(map(len, chunks)) > MAX_EVENT_SIZE  # only what the bound refuses


@given(st.sampled_from(["text/plain", "application/json", "", "text/event-streamx"]))
def test_sse_refuses_another_content_type(content_type: str) -> None:
    with pytest.raises(buttress.DecodingError):
        next(iter_sse(_event_stream([b"data: x\n\n"], content_type)))


# -- defects the fuzzers found ---------------------------------------------------------------------


def test_json_on_a_body_that_is_not_unicode_raises_invalid_json_error() -> None:
    # Regression: the fallback for bodies json.loads cannot decode raised a bare JSONDecodeError.
    with pytest.raises(buttress.InvalidJSONError):
        _response(200, b"\xff", None).json()


def test_json_nested_too_deeply_raises_invalid_json_error() -> None:
    # Regression: a body of 100,000 '[' escaped as RecursionError.
    with pytest.raises(buttress.InvalidJSONError, match="nested too deeply"):
        _response(200, b"[" * 100_000, "application/json").json()


def test_json_with_a_number_of_thousands_of_digits_raises_invalid_json_error() -> None:
    # Regression: Python's int-to-string limit (4,300 digits) escaped as a bare ValueError.
    with pytest.raises(buttress.InvalidJSONError, match=r"4300"):
        _response(200, b"9" * 5_000, "application/json").json()


def test_json_with_a_utf16_charset_and_no_bom_raises_invalid_json_error() -> None:
    # Regression: httpx's text decoding raised UnicodeError("UTF-16 stream does not start
    # with BOM") from inside the error path.
    with pytest.raises(buttress.InvalidJSONError):
        _response(200, b"\xff\x00\x00", "application/json; charset=utf-16").json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 100_000, None),
        (b'{"error":' * 5_000 + b"1" + b"}" * 5_000, "application/json"),
        (b"\xff\x00\x00", "application/json; charset=utf-16"),
    ],
    ids=["deep-array", "deep-error-object", "utf16-without-bom"],
)
def test_error_parser_survives_hostile_bodies(body: bytes, content_type: str | None) -> None:
    # Regression: RecursionError and UnicodeError escaped default_error_parser.
    parsed = default_error_parser(_response(500, body, content_type))
    assert parsed is None or isinstance(parsed[0], str)


def test_error_parser_reads_an_error_nested_as_deep_as_json_allows() -> None:
    body: Any = "deep message"
    for _ in range(900):
        body = {"error": body}
    parsed = default_error_parser(_response(500, json.dumps(body).encode(), "application/json"))
    assert parsed is not None
    assert parsed[0] == "deep message"


def test_redact_url_keeps_the_user_name() -> None:
    # Regression: httpx's copy_with(password=...) dropped the user name ("https://:[R]@...").
    assert (
        redact_url("https://ada:pw@api.example.com/x") == "https://ada:[REDACTED]@api.example.com/x"
    )


def test_redact_url_keeps_the_query_before_the_fragment() -> None:
    # Regression: the redacted query was appended after the fragment ("/x#top?token=...").
    assert redact_url("https://h.test/x?token=t#top") == "https://h.test/x?token=[REDACTED]#top"


def test_redact_url_keeps_an_encoded_sensitive_name_encoded() -> None:
    # Regression: "a%26token" (a name containing '&') was written back raw, as two parameters.
    url = httpx.URL("https://h.test/x", params={"a&token": "S3CR3T"})
    assert redact_url(url) == "https://h.test/x?a%26token=[REDACTED]"


def test_a_cache_control_too_long_to_be_genuine_is_not_parsed_and_stores_nothing() -> None:
    # Found by the Cache-Control fuzzer: 200,000 repeated characters took hishel's
    # character-by-character parser past the two-second bound.
    value = "max-age=60, " * 20_000
    parsed = cache_control(value)
    assert parsed.no_store
    assert parsed.max_age is None
    assert cache_control("max-age=60, " * 10).max_age == 60  # ordinary values as before
