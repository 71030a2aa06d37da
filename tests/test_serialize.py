"""Request serialization and response parsing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

import buttress
from buttress import _serialize
from buttress._response import detect_encoding
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio


class NewUser(BaseModel):
    full_name: str = Field(alias="fullName")
    born: dt.date


@dataclasses.dataclass
class Point:
    x: float
    tag: uuid.UUID


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON)
def test_orjson_and_stdlib_give_the_same_bytes(value: Any) -> None:
    ready = _serialize.jsonable(value)
    fast = _serialize.encode_json(value)
    assert fast == _serialize._stdlib_dumps(ready)


def test_same_bytes_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": [1e-7, 2**70, "é", 1.5], "d": dt.date(2024, 1, 2)}
    with_orjson = _serialize.encode_json(value)
    monkeypatch.setattr(_serialize, "_orjson_dumps", lambda: None)
    assert _serialize.encode_json(value) == with_orjson
    assert with_orjson == '{"a":[1e-07,1180591620717411303424,"é",1.5],"d":"2024-01-02"}'.encode()


def test_models_dataclasses_and_special_values() -> None:
    tag = uuid.UUID(int=1)
    body = {
        "user": NewUser(fullName="Zoë", born=dt.date(1990, 5, 17)),
        "point": Point(0.5, tag),
        "price": Decimal("1.10"),
        "nan": float("nan"),
    }
    assert json.loads(_serialize.encode_json(body)) == {
        "user": {"fullName": "Zoë", "born": "1990-05-17"},
        "point": {"x": 0.5, "tag": str(tag)},
        "price": "1.10",
        "nan": None,
    }


def test_unserializable_body_is_a_validation_error() -> None:
    with pytest.raises(buttress.ValidationError, match="not JSON-serializable"):
        _serialize.encode_json({"f": object()})


async def test_json_body_and_content_type(client: Either) -> None:
    sent = await client.post("/echo", json=NewUser(fullName="Ada", born=dt.date(1815, 12, 10)))
    echo = sent.json()
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["body"] == '{"fullName":"Ada","born":"1815-12-10"}'
    echo = (await client.post("/echo", json=[1, 2], headers={"content-type": "x/y"})).json()
    assert (echo["headers"]["content-type"], echo["json"]) == ("x/y", [1, 2])


async def test_custom_serializer(make_client: Any, demo: Any) -> None:
    either = make_client(base_url=demo.url, json_serializer=lambda v: json.dumps(v, indent=1))
    echo = (await either.post("/echo", json={"a": 1})).json()
    assert echo["body"] == '{\n "a": 1\n}'


async def test_form_and_multipart_content_types(client: Either) -> None:
    form = (await client.post("/echo", data={"name": "Ada", "n": "1"})).json()
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert form["body"] == "name=Ada&n=1"
    multi = (await client.post("/echo", files={"f": ("a.txt", b"hello")}, data={"k": "v"})).json()
    assert multi["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'filename="a.txt"' in multi["body"]
    assert "hello" in multi["body"]


def test_parsed_follows_the_content_type() -> None:
    def response(body: bytes, content_type: str | None) -> buttress.Response:
        headers = {"content-type": content_type} if content_type else {}
        return buttress.Response(200, content=body, headers=headers)

    assert response(b'{"a": 1}', "application/problem+json").parsed() == {"a": 1}
    assert response(b"", "application/json").parsed() is None
    assert response(b"<a/>", "application/xml").parsed() == "<a/>"
    assert response(b"\x89PNG", "image/png").parsed() == b"\x89PNG"
    assert response(b"[1]", None).parsed() == [1]
    assert response(b"plain words", None).parsed() == "plain words"
    with pytest.raises(buttress.InvalidJSONError):
        response(b"<html>", "application/json").parsed()


def test_encoding_header_then_detection_then_utf8() -> None:
    declared = buttress.Response(
        200,
        content="café".encode("latin-1"),
        headers={"content-type": "text/plain; charset=latin-1"},
    )
    assert declared.text == "café"
    bogus = buttress.Response(
        200, content=b"ok", headers={"content-type": "text/plain; charset=nope"}
    )
    assert (bogus.encoding, bogus.text) == ("utf-8", "ok")
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        body = '{"name": "Zoë"}'.encode(codec)
        response = buttress.Response(
            200, content=body, headers={"content-type": "application/json"}
        )
        assert (response.encoding, response.json()) == (codec, {"name": "Zoë"})
    assert detect_encoding("\ufeffhi".encode("utf-8")) == "utf-8-sig"
    assert detect_encoding("\ufeffhi".encode("utf-16")) == "utf-16"
    assert detect_encoding("\ufeffhi".encode("utf-32")) == "utf-32"
    assert detect_encoding(b"\xff\xfe") == "utf-16"
    assert detect_encoding(b"x") == "utf-8"
    fallback = buttress.Response(200, content=b"caf\xe9")
    assert fallback.text == "caf\ufffd"  # UTF-8 with replacement, never an exception
    with pytest.raises(ValueError, match="after `text`"):
        fallback.encoding = "latin-1"
    chosen = buttress.Response(200, content=b"caf\xe9")
    chosen.encoding = "latin-1"
    assert chosen.text == "café"


def nested(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth - 1):
        inner.append([])
        inner = inner[0]
    return outer


NO_JSON_FORM: dict[str, tuple[Any, str]] = {
    "a lone surrogate": ({"a": "\ud800"}, r"'\\ud800' \(a lone surrogate\)"),
    "bytes that are not UTF-8": ({"a": b"\xff"}, "can't decode byte 0xff"),
    "a list 2,000 deep": (nested(2000), "depth exceeded"),
    "keys equal as strings": ({1: "a", "1": "b"}, "keys 1 and '1' of one object are both '1'"),
    "nested keys equal as strings": ({"x": [{(1, 2): 1, "1,2": 2}]}, r"keys \(1, 2\) and '1,2'"),
    "None and 'None'": ({None: 1, "None": 2}, "keys None and 'None'"),
}


@pytest.mark.parametrize("name", NO_JSON_FORM)
@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json"])
async def test_a_body_without_a_json_form_is_a_validation_error(
    client: Either, monkeypatch: pytest.MonkeyPatch, name: str, fast: bool
) -> None:
    """Never UnicodeError, a bare ValueError, or a body that silently lost a member."""
    if not fast:
        monkeypatch.setattr(_serialize, "_orjson_dumps", lambda: None)
    value, match = NO_JSON_FORM[name]
    with pytest.raises(buttress.ValidationError, match=f"not JSON-serializable: .*{match}"):
        await client.post("/echo", json=value)


async def test_keys_distinct_as_strings_and_deep_bodies_are_sent(client: Either) -> None:
    echo = (await client.post("/echo", json={1: "a", 2: "b", "c": {3: [4]}})).json()
    assert echo["body"] == '{"1":"a","2":"b","c":{"3":[4]}}'
    deep = nested(250)  # beyond orjson's depth (the standard library encodes it)
    assert (await client.post("/echo", json=deep)).json()["json"] == deep


async def test_a_custom_serializer_must_return_bytes_or_str(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    def client_with(serializer: Any) -> Either:
        return make_client(base_url=demo.url, json_serializer=serializer)

    with pytest.raises(buttress.ConfigurationError, match="must return bytes or str, not dict"):
        await client_with(lambda value: value).post("/echo", json={"a": 1})
    with pytest.raises(buttress.ValidationError, match="lone surrogate"):
        await client_with(lambda value: '"\ud800"').post("/echo", json="x")
    sent = await client_with(lambda value: b'{"b":2}').post("/echo", json={"a": 1})
    assert sent.json()["body"] == '{"b":2}'
