"""The RFC 8288 Link header parser."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from buttress.policies.headers import next_link, parse_link_header

GITHUB = (
    '<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", '
    '<https://api.github.com/repositories/1300192/issues?page=4>; rel="next", '
    '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last", '
    '<https://api.github.com/repositories/1300192/issues?page=1>; rel="first"'
)


def test_github_style_header() -> None:
    links = parse_link_header(GITHUB)
    assert [link.rels for link in links] == [("prev",), ("next",), ("last",), ("first",)]
    headers = httpx.Headers({"link": GITHUB})
    assert next_link(headers) == "https://api.github.com/repositories/1300192/issues?page=4"
    assert next_link(headers, rel="last", base="https://x").endswith("page=515")  # type: ignore[union-attr]


def test_quoting_multiple_rels_and_relative_targets() -> None:
    value = '</a?x=1,2>; rel="next last"; title="a;b, \\"c\\"", </b>;rel=prev;anchor="#x"'
    first, second = parse_link_header(value)
    assert (first.url, first.rels) == ("/a?x=1,2", ("next", "last"))
    assert first.params["title"] == 'a;b, "c"'
    assert second.params == {"rel": "prev", "anchor": "#x"}
    headers = httpx.Headers([("link", "</b>; rel=prev"), ("link", value)])
    assert next_link(headers, base="https://api.example.com/z") == "https://api.example.com/a?x=1,2"


def test_malformed_headers_give_what_parsed() -> None:
    assert parse_link_header("") == []
    assert parse_link_header("nonsense") == []
    assert [link.url for link in parse_link_header("<u>; rel=next junk, <v>")] == ["u"]
    assert next_link(httpx.Headers({"link": "<u>; rel=prev"})) is None


@given(st.text(max_size=80))
def test_never_raises(value: str) -> None:
    parse_link_header(value)
