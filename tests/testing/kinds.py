"""One test body for the four kinds of client a testing helper must serve.

``buttress.Client``, ``buttress.AsyncClient``, ``httpx.Client`` and
``httpx.AsyncClient``: ``await client_of(kind, ...).get(url)`` works for all of them.
"""

from __future__ import annotations

from typing import Any

import httpx

import buttress
from tests.conftest import Either

# a client of any of the four kinds, behind one awaitable API (see tests/conftest.py)
Caller = Either[httpx.Client | httpx.AsyncClient]
KINDS = ["buttress-sync", "buttress-async", "httpx-sync", "httpx-async"]
_CLASSES: dict[str, Any] = {
    "buttress-sync": buttress.Client,
    "buttress-async": buttress.AsyncClient,
    "httpx-sync": httpx.Client,
    "httpx-async": httpx.AsyncClient,
}


def client_of(kind: str, transport: Any, base_url: str = "", **kwargs: Any) -> Caller:
    """A client of one kind over ``transport``, driven the same way as the others."""
    if kind.startswith("buttress"):
        # The helpers under test script each answer; retries would consume them.
        kwargs.setdefault("retry", False)
    return Either(_CLASSES[kind](base_url=base_url, transport=transport, **kwargs))
