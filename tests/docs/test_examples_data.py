"""The streaming, Pydantic and pagination examples run as written against the demo API."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from buttress.testing import DemoServer

EXAMPLES = Path(__file__).parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations here
    spec.loader.exec_module(module)
    return module


def test_streaming_example(
    demo: DemoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = os.getcwd()
    try:
        load("streaming").main(demo.url, str(tmp_path))
    finally:
        os.chdir(here)
    out = capsys.readouterr().out
    assert "Progress: 200000/200000 bytes" in out
    assert "event 5: tick {'n': 5}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large-file.zip", "other-file.zip"]


def test_pydantic_example(demo: DemoServer, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(load("pydantic_models").main(demo.url))
    assert "Ada Lovelace" in capsys.readouterr().out


def test_pagination_example(demo: DemoServer, capsys: pytest.CaptureFixture[str]) -> None:
    load("pagination").main(demo.url)
    out = capsys.readouterr().out
    assert "Processing user: User 100" in out
    assert "Processed 100 users across 2 pages" in out


def test_tour_shows_pagination_and_events(
    demo: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    load("tour").pagination_and_events(demo.url)
    out = capsys.readouterr().out
    assert "100 users over 10 pages" in out
    assert "events [1, 2, 3, 4], reconnects: 1" in out


def test_tour_shows_an_oauth_token_kept(
    demo: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    load("tour").oauth(demo.url)
    out = capsys.readouterr().out
    assert "GET /me as demo-service, scope 'users:read'" in out
    assert "two calls, 1 token request" in out
    assert "demo-service-secret" not in out
