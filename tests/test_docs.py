"""The Python examples in the docs run as written (each page's blocks in order).

Blocks fenced as ```python run here, offline, against the demo API; blocks that
need infrastructure the reader has and CI does not (a corporate CA file, a
remote server) are fenced as ```py and only shown.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

DOCS = Path(__file__).parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Pages configure logging as a reader would (levels, handlers); no later test sees it."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(lg, lg.level, list(lg.handlers), list(lg.filters), lg.propagate) for lg in loggers]
    yield
    for lg, level, handlers, filters, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:], lg.filters[:], lg.propagate = handlers, filters, propagate
    for name in set(logging.root.manager.loggerDict) - {lg.name for lg in loggers}:
        made = logging.getLogger(name)  # a logger a page created: back to a blank one
        made.setLevel(logging.NOTSET)
        made.handlers.clear()
        made.filters.clear()
        made.propagate = True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    # Pages show configuration with bare `client = Client(...)` lines for brevity;
    # what they leave open is closed here rather than in every snippet.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for block in BLOCK.findall(page.read_text()):
            exec(compile(block, str(page), "exec"), namespace)
        for value in namespace.values():
            if isinstance(value, httpx.Client):
                value.close()
            elif isinstance(value, httpx.AsyncClient):
                asyncio.run(value.aclose())
        namespace.clear()
        gc.collect()
