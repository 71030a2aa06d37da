"""Storage keys and stored requests stay what earlier versions wrote.

A shared backend (disk, Redis, Memcached) keeps entries across versions: a
key computed differently would lose them all. The values here were written by
an earlier version for the same salt and requests.
"""

from __future__ import annotations

import httpx
import pytest
from hishel import Headers, Request

from buttress.cache._keys import CacheKeys, header_fields

SALT = b"0" * 16


@pytest.mark.parametrize(
    ("request_", "key", "url", "accept"),
    [
        (
            httpx.Request("GET", "https://api.example.com/users/1"),
            "4f2b50c587a399641eed6144d1e86d27b90bde55",
            "https://api.example.com/users/1",
            None,
        ),
        (
            httpx.Request(
                "GET",
                "https://api.example.com/users/1?page=2&api_key=k",
                headers={"Authorization": "Bearer t", "Accept": "a"},
            ),
            "581f5c9ebbc2bde360ad2c15a6810080c742833e2880267986c77d7eae10ab75f67e70ea",
            "https://api.example.com/users/1?h:bb538c4feef3fb3cd1c2d213d6ed7132",
            "h:216e511ec39c6b092df5562e9784f27c",
        ),
        (
            httpx.Request(
                "GET",
                "https://api.example.com/users/1",
                headers={"Host": "Other.Example", "Cookie": "a=1"},
            ),
            "83e00761a0de58adf257a332d6f0b546e5bb6f43c25071373f4ae8ad41c26588a79fc217",
            "https://other.example/users/1",
            None,
        ),
    ],
)
def test_keys_and_stored_requests_are_those_earlier_versions_wrote(
    request_: httpx.Request, key: str, url: str, accept: str | None
) -> None:
    keys = CacheKeys(SALT)
    fields = header_fields(request_.headers)
    assert keys.key(request_) == keys.key(request_, fields) == (key, url)
    stored = {"accept": [accept]} if accept is not None else {}
    expected = Request("GET", url, Headers(stored))
    assert keys.stored_request(request_, url, {"accept"}) == expected
    assert keys.stored_request(request_, url, {"accept"}, fields) == expected
    assert keys.key(request_)[0].startswith(keys.url_key(request_.url, request_))
