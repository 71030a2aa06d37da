"""Hypothesis strategies shared by the parser property and fuzz tests.

Well-formed values (JSON documents, HTTP dates, URLs with secrets in them) for the
property tests; hostile ones (very long values, odd encodings, nonsense numbers)
for the fuzz tests. New parsers (rate-limit headers, Link, Cache-Control, SSE)
reuse these and add their own well-formed strategies here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import strategies as st

# -- well-formed -------------------------------------------------------------------------------

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
"""Any JSON document Python's json module round-trips."""

http_dates = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
).map(lambda moment: moment.replace(microsecond=0))
"""Whole-second UTC datetimes, as an HTTP-date can carry them."""

epoch_seconds = st.floats(min_value=0, max_value=7_000_000_000, allow_nan=False)
"""A "now" for parsers that measure a date against the current time."""

url_safe_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)
"""Text a URL component can carry once percent-encoded (no controls, no surrogates)."""

SENSITIVE_PARAM_NAMES = ["api_key", "token", "access_token", "password", "X-Amz-Signature", "sig"]
SENSITIVE_HEADER_NAMES = ["Authorization", "Cookie", "X-API-Key", "Proxy-Authorization"]

secrets = url_safe_text.map(lambda text: f"S3CR3T{text}")
"""A secret value with a marker that appears nowhere else in a generated URL."""

# -- hostile -----------------------------------------------------------------------------------

_LONG_UNITS = ["9", "[", "{", '{"error":', " ", "\\u", "a", "%", ",", "\x00", "é", "\U0001f4a5"]

very_long_text = st.builds(
    lambda unit, count: unit * count, st.sampled_from(_LONG_UNITS), st.integers(1, 200_000)
)
"""One character or token repeated up to 200,000 times."""

nonsense_numbers = st.sampled_from(
    [
        "nan", "NaN", "inf", "-inf", "Infinity", "-0", "-1", "-0.0", "1e309", "1e-400", "0x10",
        "1_000", "١٢٣", "²", "½", "12abc", " 12 ", "+5", "1.2.3", "..", ".", "", "9" * 5000,
        "0" * 5000 + "1", "1" + "0" * 400, "99999999999999999999999999",
    ]
)  # fmt: skip
"""Numbers no server should send, but some do."""

odd_encodings = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda text: text.encode("utf-16")),
    st.text(max_size=100).map(lambda text: text.encode("utf-32")),
    st.text(st.characters(max_codepoint=255), max_size=100).map(lambda t: t.encode("latin-1")),
    st.just(b"\xef\xbb\xbf{}"),  # UTF-8 byte order mark
    st.just(b"\xff\xfe{\x00"),  # a UTF-16 BOM and half a character
    st.just(b'"\xed\xa0\x80"'),  # an encoded surrogate
)
"""Bytes in encodings a parser expecting UTF-8 (or ASCII) does not."""

hostile_text = st.one_of(
    st.text(), very_long_text, nonsense_numbers, odd_encodings.map(lambda b: b.decode("latin-1"))
)
hostile_bytes = st.one_of(
    odd_encodings,
    very_long_text.map(lambda text: text.encode("utf-8")),
    nonsense_numbers.map(str.encode),
)

# -- Cache-Control -----------------------------------------------------------------------------

CACHE_SECONDS_DIRECTIVES = [
    "max-age", "s-maxage", "max-stale", "min-fresh", "stale-if-error", "stale-while-revalidate",
]  # fmt: skip
CACHE_FLAG_DIRECTIVES = [
    "no-store", "no-transform", "only-if-cached", "must-revalidate", "must-understand", "public",
    "proxy-revalidate", "immutable",
]  # fmt: skip
CACHE_FIELD_DIRECTIVES = ["no-cache", "private"]

header_field_names = st.sampled_from(["Set-Cookie", "Authorization", "Vary", "X-Trace-Id", "Etag"])

cache_directives: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.integers(0, 2**31 - 1) for name in CACHE_SECONDS_DIRECTIVES},
        **{name: st.just(True) for name in CACHE_FLAG_DIRECTIVES},
        **{
            name: st.just(True) | st.lists(header_field_names, min_size=1, max_size=3, unique=True)
            for name in CACHE_FIELD_DIRECTIVES
        },
    },
)
"""Well-formed Cache-Control directives: seconds, flags, and flags with field names."""

# -- server-sent events ------------------------------------------------------------------------

sse_field_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r\n\x00"),
    max_size=20,
)
"""A field value an event stream can carry on one line (an id with NUL would be ignored)."""


sse_events: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "event": st.none() | sse_field_text.filter(bool),
        "id": st.none() | sse_field_text,
        "data": st.lists(sse_field_text, min_size=1, max_size=4),
        "retry": st.none() | st.integers(0, 10**18 - 1),
        "comment": st.none() | sse_field_text,
    }
)
"""One event block's fields; a data line, even an empty one, makes it an event (WHATWG)."""
