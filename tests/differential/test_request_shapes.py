"""Generated request shapes through bare httpx and the full stack, on both clients."""

from __future__ import annotations

import asyncio
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .run import Env, assert_same, observe
from .scenarios import METHODS, Scenario

_token = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=12)
_value = st.text(string.ascii_letters + string.digits + " -_.,;:/=+*!?'()", max_size=20).map(
    str.strip
)
_reserved = {"host", "content-length", "transfer-encoding", "connection", "x-request-id"}
_header_names = _token.filter(lambda name: name.lower() not in _reserved and name[0] != "-")
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def request_shapes(draw: Any) -> tuple[str, str, dict[str, Any]]:
    method = draw(st.sampled_from(METHODS))
    path = "/echo" + "".join(f"/{part}" for part in draw(st.lists(_token, max_size=3)))
    call: dict[str, Any] = {
        "params": draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
        "headers": draw(st.dictionaries(_header_names, _value, max_size=4)),
    }
    body = draw(st.sampled_from(["none", "content", "text", "json", "data"]))
    if body == "content":
        call["content"] = draw(st.binary(max_size=64))
    elif body == "text":
        call["content"] = draw(st.text(max_size=32))
    elif body == "json":
        call["json"] = draw(_json)
    elif body == "data":
        call["data"] = draw(st.dictionaries(_token, st.text(max_size=10), max_size=3))
    return method, path, call


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shape=request_shapes())
def test_any_request_shape_looks_the_same(shape: tuple[str, str, dict[str, Any]], env: Env) -> None:
    method, path, call = shape
    scenario = Scenario("generated", path, method, "mock", body=lambda is_async: dict(call))
    for is_async in (False, True):
        bare = asyncio.run(observe(scenario, is_async, layered=False, env=env))
        layered = asyncio.run(observe(scenario, is_async, layered=True, env=env))
        assert_same(bare, layered)


@pytest.mark.parametrize("method", METHODS)
def test_the_shapes_reach_the_app(method: str, env: Env) -> None:
    """The generated rows are real requests: the echo shows what was sent."""
    call = {"params": {"q": "1"}, "headers": {"X-Shape": "yes"}, "content": b"body"}
    scenario = Scenario("probe", "/echo/a/b", method, "mock", body=lambda is_async: dict(call))
    seen = asyncio.run(observe(scenario, False, layered=True, env=env))
    echo = seen["content"]
    assert (echo["method"], echo["path"], echo["query"]) == (method, "/echo/a/b", "q=1")
    assert ["x-shape", "yes"] in echo["headers"]
    assert echo["body"] == "body"
