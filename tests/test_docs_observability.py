"""The examples of docs/middleware.md and docs/logging-and-tracing.md run as written."""

from __future__ import annotations

import logging
import re
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    """The pages configure the ``buttress`` logger; put it back for the other tests."""
    logger = logging.getLogger("buttress")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.mark.parametrize("page", ["middleware.md", "logging-and-tracing.md"])
def test_doc_page_runs(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / page).read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    exec(compile(code, page, "exec"), {"__name__": f"docs.{page}"})
    assert capsys.readouterr().out  # the pages print what they show


def test_correlated_log_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(ROOT / "examples" / "logging_and_tracing.py"), run_name="__main__")
    out = capsys.readouterr().out
    request_id = re.search(r"saw X-Request-ID (\S+)", out)
    assert request_id
    assert f"[{request_id.group(1)}] GET" in out  # the log line carries the same id
    assert "never-logged" not in out
