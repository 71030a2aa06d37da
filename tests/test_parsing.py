"""``response_model=``: every body ``.json()`` reads parses the same; an empty body is ``None``.

Real responses from a server on 127.0.0.1 answering each path with canned bytes, so
the client parses what came over the wire; ``.json()`` is checked against bare httpx.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import buttress
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class Canned:
    """An ASGI app answering each path with the status, headers and body set for it."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}

    def answer(
        self, path: str, body: bytes, content_type: str | None = None, status: int = 200
    ) -> str:
        headers = [] if content_type is None else [(b"content-type", content_type.encode())]
        if status not in (204, 304):
            headers.append((b"content-length", str(len(body)).encode()))
        self.answers[path] = (status, headers, body)
        return path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        status, headers, body = self.answers[scope["path"]]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


@pytest.fixture(scope="module")
def canned() -> Iterator[tuple[Canned, str]]:
    app = Canned()
    with DemoServer(app) as server:
        yield app, server.url


def bare_httpx(mode: str) -> Either[httpx.Client | httpx.AsyncClient]:
    """A plain httpx client of the test's kind (sync or async)."""
    return Either(httpx.Client() if mode == "sync" else httpx.AsyncClient())


class Doc(BaseModel):
    a: Any


class Dated(BaseModel):
    at: dt.datetime


DOC = {"a": "é ü"}
_DEEP = "[" * 300 + "]" * 300  # deeper than pydantic's JSON parser goes (json reads it)
BODIES: dict[str, tuple[bytes, str | None]] = {
    "utf8": (json.dumps(DOC, ensure_ascii=False).encode(), "application/json"),
    "bom-utf8": (codecs.BOM_UTF8 + json.dumps(DOC).encode(), "application/json; charset=utf-8"),
    "utf16": (json.dumps(DOC, ensure_ascii=False).encode("utf-16"), "application/json"),
    "utf16-le": (json.dumps(DOC, ensure_ascii=False).encode("utf-16-le"), "application/json"),
    "utf32-le": (json.dumps(DOC, ensure_ascii=False).encode("utf-32-le"), "application/json"),
    "utf32-be": (json.dumps(DOC, ensure_ascii=False).encode("utf-32-be"), None),
    "deep": (('{"a": ' + _DEEP + "}").encode(), "application/json"),
    "lone-surrogate": (b'{"a": "\\ud800"}', "application/json"),
}


@pytest.mark.parametrize("name", BODIES)
async def test_response_model_reads_every_body_json_reads(
    make_client: Callable[..., Either], mode: str, canned: tuple[Canned, str], name: str
) -> None:
    app, url = canned
    body, content_type = BODIES[name]
    path = app.answer(f"/{name}", body, content_type)
    client, bare = make_client(base_url=url), bare_httpx(mode)
    try:
        expected = (await bare.get(url + path)).json()
    finally:
        await bare.aclose()
    assert (await client.get(path)).json() == expected  # the drop-in promise
    parsed = await client.get(path, response_model=Doc)
    assert parsed == Doc.model_validate(expected)
    assert await client.get(path, response_model=dict[str, Any], strict=True) == expected


async def test_a_byte_order_mark_keeps_json_mode_validation(
    make_client: Callable[..., Either], canned: tuple[Canned, str]
) -> None:
    app, url = canned
    body = codecs.BOM_UTF8 + b'{"at": "2024-01-02T03:04:05Z"}'
    path = app.answer("/bom-dated", body, "application/json; charset=utf-8")
    client = make_client(base_url=url)
    # strict=True takes an ISO string for a datetime in JSON (not in Python data)
    parsed = await client.get(path, response_model=Dated, strict=True)
    assert parsed.at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_json_does_not_guess_a_charset(
    make_client: Callable[..., Either], mode: str, canned: tuple[Canned, str], content_type: str
) -> None:
    """Latin-1 bytes without a Latin-1 charset: httpx raises, and so do both paths (no U+FFFD)."""
    app, url = canned
    path = app.answer(f"/latin1-{len(content_type)}", '{"a": "é"}'.encode("latin-1"), content_type)
    bare, client = bare_httpx(mode), make_client(base_url=url)
    try:
        with pytest.raises(ValueError, match="can't decode byte 0xe9"):
            (await bare.get(url + path)).json()
    finally:
        await bare.aclose()
    with pytest.raises(buttress.InvalidJSONError, match="not utf-8") as caught:
        (await client.get(path)).json()
    assert isinstance(caught.value, ValueError)  # what httpx's callers catch
    with pytest.raises(buttress.InvalidJSONError, match="not utf-8"):
        await client.get(path, response_model=Doc)
    declared = app.answer(
        "/latin1-declared", '{"a": "é"}'.encode("latin-1"), "application/json; charset=latin-1"
    )
    assert (await client.get(declared)).json() == {"a": "é"}  # a declared charset still decodes
    assert await client.get(declared, response_model=Doc) == Doc(a="é")


async def test_not_json_is_still_invalid_json(
    make_client: Callable[..., Either], canned: tuple[Canned, str]
) -> None:
    app, url = canned
    client = make_client(base_url=url)
    for body in (b'{"a": oops}', codecs.BOM_UTF8 + b"{oops", "{oops".encode("utf-16")):
        path = app.answer("/not-json", body, "application/json")
        with pytest.raises(buttress.InvalidJSONError):
            await client.get(path, response_model=Doc)


@pytest.mark.parametrize(
    ("status", "method"), [(204, "DELETE"), (205, "POST"), (304, "GET"), (200, "HEAD")]
)
async def test_an_empty_body_is_none_for_the_model(
    make_client: Callable[..., Either], canned: tuple[Canned, str], status: int, method: str
) -> None:
    app, url = canned
    path = app.answer(f"/empty-{status}", b"" if method != "HEAD" else b'{"a": 1}', None, status)
    client = make_client(base_url=url, raise_for_status=False)

    async def parse(model: Any) -> Any:
        return await client.request(method, path, response_model=model)

    assert await parse({200: Doc, status: None}) is None
    assert await parse({200: Doc, status: type(None)}) is None
    assert await parse({200: Doc, status: Doc | None}) is None
    if 200 <= status < 300:  # a single model is for 2xx answers; a 304 is mapped
        assert await parse(Doc | None) is None
        with pytest.raises(buttress.ValidationError) as caught:
            await parse(Doc)
        message = str(caught.value)
        assert f"the empty body of the {status} response to {method}" in message
        assert "does not match Doc" in message
        assert "Doc | None accepts" in message
    with pytest.raises(buttress.ValidationError, match=f"maps 201 only; add {status}: None"):
        await parse({201: Doc})


async def test_a_status_mapped_to_none_wants_no_content(
    make_client: Callable[..., Either], canned: tuple[Canned, str]
) -> None:
    app, url = canned
    client = make_client(base_url=url)
    path = app.answer("/has-body", b'{"a": 1}', "application/json")
    with pytest.raises(buttress.ValidationError, match="does not match None"):
        await client.get(path, response_model={200: None})
    assert await client.get(path, response_model={200: Doc, 204: None}) == Doc(a=1)
    null = app.answer("/null", b"null", "application/json")
    assert await client.get(null, response_model={200: None}) is None
