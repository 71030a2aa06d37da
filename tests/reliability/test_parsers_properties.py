"""Property-based tests for every parser of untrusted input, one section per parser.

Each section states what must hold for *well-formed* input (round trips,
monotonicity, what is kept and what is hidden); test_parsers_fuzz.py throws
hostile input at the same parsers. A new parser of untrusted input gets a
section here and one in the fuzz file. Stateful tests of the breaker and the
rate limits are in test_stateful.py beside this file.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import hishel
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import buttress
from buttress import Response, default_error_parser
from buttress._redact import REDACTED, redact_headers, redact_url
from buttress.policies.cache import RequestDirectives, cache_control, freshness_lifetime
from buttress.policies.headers import parse_retry_after
from buttress.streaming import iter_sse

from .strategies import (
    CACHE_FIELD_DIRECTIVES,
    CACHE_FLAG_DIRECTIVES,
    CACHE_SECONDS_DIRECTIVES,
    SENSITIVE_HEADER_NAMES,
    SENSITIVE_PARAM_NAMES,
    cache_directives,
    epoch_seconds,
    http_dates,
    json_values,
    secrets,
    sse_events,
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


# -- Cache-Control (policies/cache.py, through hishel's parser) --------------------------------


def _render_directive(name: str, value: Any, upper: bool, quote_seconds: bool) -> str:
    name = name.upper() if upper else name
    if value is True:
        return name
    if isinstance(value, list):
        return f'{name}="{", ".join(value)}"'
    return f'{name}="{value}"' if quote_seconds else f"{name}={value}"


@given(
    cache_directives,
    st.randoms(use_true_random=False),
    st.sampled_from([",", ", ", " ,", " , ", ",\t"]),
    st.booleans(),
    st.booleans(),
)
def test_cache_control_round_trips_well_formed_directives(
    directives: dict[str, Any], random: Any, separator: str, upper: bool, quote_seconds: bool
) -> None:
    rendered = [
        _render_directive(name, value, upper, quote_seconds) for name, value in directives.items()
    ]
    random.shuffle(rendered)
    parsed = cache_control(separator.join(rendered))
    # The directives a private cache acts on are read; the others (s-maxage, immutable,
    # private, ...) are generated too, and must not disturb them.
    modelled = {field.name for field in dataclasses.fields(parsed)}
    for name in CACHE_SECONDS_DIRECTIVES:
        if name.replace("-", "_") in modelled:
            assert getattr(parsed, name.replace("-", "_")) == directives.get(name)
    for name in CACHE_FLAG_DIRECTIVES:
        if name.replace("-", "_") in modelled:
            assert getattr(parsed, name.replace("-", "_")) is (name in directives)
    for name in CACHE_FIELD_DIRECTIVES:
        if name.replace("-", "_") not in modelled:
            continue
        value = getattr(parsed, name.replace("-", "_"))
        expected = directives.get(name, False)
        if isinstance(expected, list):
            assert [field.lower() for field in value] == [field.lower() for field in expected]
        else:
            assert value is expected


@given(cache_directives, st.integers(1, 4))
def test_request_directives_read_split_header_values_as_one(
    directives: dict[str, Any], parts: int
) -> None:
    rendered = [_render_directive(name, value, False, False) for name, value in directives.items()]
    values = [", ".join(rendered[index::parts]) for index in range(parts)]
    together = RequestDirectives.parse(", ".join(rendered))
    assert RequestDirectives.parse(*values, None) == together
    assert together.max_age == directives.get("max-age")
    assert together.max_stale == directives.get("max-stale")
    assert together.min_fresh == directives.get("min-fresh")
    assert together.no_store is ("no-store" in directives)
    assert together.no_cache is ("no-cache" in directives)
    assert together.only_if_cached is ("only-if-cached" in directives)


@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), cache_directives)
def test_freshness_uses_the_first_max_age(first: int, second: int, others: dict[str, Any]) -> None:
    others.pop("max-age", None)
    rest = [_render_directive(name, value, False, False) for name, value in others.items()]
    value = ", ".join([f"max-age={first}", *rest, f"max-age={second}"])
    headers = hishel.Headers({"cache-control": value})
    assert freshness_lifetime(headers, response_time=0.0, default_ttl=None) == float(first)


# -- server-sent events (streaming.py over httpx-sse) ------------------------------------------


def _render_events(events: list[dict[str, Any]], newline: str) -> bytes:
    lines: list[str] = []
    for event in events:
        if event["comment"] is not None:
            lines.append(f":{event['comment']}")
        if event["event"] is not None:
            lines.append(f"event: {event['event']}")
        if event["id"] is not None:
            lines.append(f"id: {event['id']}")
        if event["retry"] is not None:
            lines.append(f"retry: {event['retry']}")
        lines.extend(f"data: {line}" for line in event["data"])
        lines.append("")
    return "".join(line + newline for line in lines).encode()


def _event_stream(body: bytes, cuts: list[int]) -> httpx.Response:
    """A streamed event-stream response delivering ``body`` in pieces split at ``cuts``."""
    bounds = [0, *sorted({cut % (len(body) + 1) for cut in cuts}), len(body)]
    chunks = [body[start:end] for start, end in itertools.pairwise(bounds)]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


@given(
    st.lists(sse_events, max_size=6),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_sse_round_trips_ids_names_and_multi_line_data(
    events: list[dict[str, Any]], newline: str, cuts: list[int]
) -> None:
    expected = []
    last_id = ""
    for event in events:
        if event["id"] is not None:
            last_id = event["id"]
        expected.append(
            (event["event"] or "message", "\n".join(event["data"]), last_id, event["retry"])
        )
    response = _event_stream(_render_events(events, newline), cuts)
    parsed = [(e.event, e.data, e.id, e.retry) for e in iter_sse(response)]
    assert parsed == expected
