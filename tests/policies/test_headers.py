"""Retry-After parsing (both RFC 9110 forms and retry-after-ms)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.policies.headers import parse_challenges, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:27 GMT"}, 7.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:00 GMT"}, 0.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:27 -0000"}, 7.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "bad", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "9" * 400}, 365 * 24 * 3600.0),
        # One header sent twice, combined by the recipient (RFC 9110 5.3).
        ({"Retry-After": "120, 120"}, 120.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:27 GMT, Tue, 14 Nov 2023 22:13:27 GMT"}, 7.0),
        # What float() takes but no server means as a delay.
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "1e3"}, None),
        ({"Retry-After": "1_000"}, None),
        ({"retry-after-ms": "inf", "Retry-After": "3"}, 3.0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), now=NOW) == expected


# -- WWW-Authenticate challenges (RFC 9110 11.6.1) ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 9110 11.6.1's own example: two challenges, a quoted pair in a value
        (
            'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
            [
                ("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
                ("basic", {"realm": "simple"}),
            ],
        ),
        (
            'Bearer realm="a, b=c", error=invalid_token',
            [("bearer", {"realm": "a, b=c", "error": "invalid_token"})],
        ),
        ("Negotiate abc==, Bearer", [("negotiate", {}), ("bearer", {})]),
        ("", []),
    ],
)
def test_parse_challenges(value: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert parse_challenges(value) == expected


@given(st.text(max_size=200))
def test_parse_challenges_never_raises(value: str) -> None:
    for scheme, params in parse_challenges(value):
        assert scheme == scheme.lower()
        assert all(name == name.lower() for name in params)
